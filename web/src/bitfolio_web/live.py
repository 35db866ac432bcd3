"""Live updates: one exclusive queue per web process, fanned out to the open pages of each event's owner."""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from contracts.portfolios import PortfolioUpdated
from contracts.prices import PriceTicked

from contracts import ContractError, decode, names

log = structlog.get_logger()
PortfolioListener = Callable[[PortfolioUpdated], Awaitable[None]]
TickListener = Callable[[PriceTicked], Awaitable[None]]
StatusListener = Callable[[bool], Awaitable[None]]


class LiveUpdates:
    def __init__(self, rabbit_url: str, prefetch: int = 50) -> None:
        self.rabbit_url = rabbit_url
        self.prefetch = prefetch
        self.queue_name: str | None = None
        self.by_owner: dict[str, set[PortfolioListener]] = defaultdict(set)
        self.tick_listeners: set[TickListener] = set()
        self.status_listeners: set[StatusListener] = set()
        self.connected = False
        self._connection: AbstractRobustConnection | None = None
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- page registration
    def watch_owner(self, owner_id: str, listener: PortfolioListener) -> Callable[[], None]:
        self.by_owner[owner_id].add(listener)
        return lambda: self.by_owner[owner_id].discard(listener)

    def watch_ticks(self, listener: TickListener) -> Callable[[], None]:
        self.tick_listeners.add(listener)
        return lambda: self.tick_listeners.discard(listener)

    def watch_status(self, listener: StatusListener) -> Callable[[], None]:
        self.status_listeners.add(listener)
        return lambda: self.status_listeners.discard(listener)

    # ---------------------------------------------------------------- connection
    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()

    async def _set_status(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        for listener in list(self.status_listeners):
            await _safely(listener, connected)

    async def _keep_connected(self) -> None:
        """Connect (retrying), subscribe, and report drops and returns to the open pages."""
        while self._connection is None:
            try:
                self._connection = await aio_pika.connect_robust(self.rabbit_url)
            except (OSError, aio_pika.exceptions.AMQPError) as error:
                log.warning("live_updates_unreachable", reason=str(error))
                await asyncio.sleep(2)
        connection = self._connection
        connection.close_callbacks.add(lambda *_: asyncio.ensure_future(self._set_status(False)))
        connection.reconnect_callbacks.add(lambda *_: asyncio.ensure_future(self._set_status(True)))
        channel = await connection.channel()
        # Deliveries are acked, so that at most `prefetch` of a burst sit in this process; the rest wait in RabbitMQ.
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, names.PORTFOLIO_UPDATED)
        await queue.bind(exchange, names.PRICE_TICKED)
        self.queue_name = queue.name
        await queue.consume(self._on_message_acked)
        await self._set_status(True)

    async def _on_message_acked(self, message: AbstractIncomingMessage) -> None:
        async with message.process(ignore_processed=True):  # acked even when a listener failed: never redelivered
            await self._on_message(message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            if message.routing_key == names.PRICE_TICKED:
                tick = decode(PriceTicked, message.body)
                for listener in list(self.tick_listeners):
                    await _safely(listener, tick)
            else:
                update = decode(PortfolioUpdated, message.body)
                for listener in list(self.by_owner.get(update.owner_id, ())):
                    await _safely(listener, update)
        except ContractError as error:
            log.warning("live_update_unreadable", reason=str(error))


async def _safely(listener: Callable[[Any], Awaitable[None]], value: Any) -> None:
    try:
        await listener(value)
    except Exception:  # a closed page must not stop the others
        log.exception("live_listener_failed")
