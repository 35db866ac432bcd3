"""Live updates: one exclusive queue per web process, bound to the owners that have a page open, fanned out to
those pages. portfolio.updated is routed by owner, so a process receives only what its open pages show."""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from contracts.portfolios import PortfolioUpdated
from contracts.prices import PriceTicked

from contracts import ContractError, decode, names

log = structlog.get_logger()
PortfolioListener = Callable[[PortfolioUpdated], Awaitable[None]]
TickListener = Callable[[PriceTicked], Awaitable[None]]
StatusListener = Callable[[bool], Awaitable[None]]
BINDING_SECONDS = 5.0
"""The longest a page waits for its owner's binding (the broker is slow or reconnecting)."""


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
        self._queue: AbstractQueue | None = None
        self._exchange: AbstractExchange | None = None
        self._bound: set[str] = set()
        self._binding = asyncio.Lock()
        self._unbinding: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- page registration
    async def watch_owner(self, owner_id: str, listener: PortfolioListener) -> Callable[[], None]:
        """Call `listener` with the owner's updates from now on (the binding is in place when this returns);
        the returned function stops it, and the last page of an owner to stop unbinds the owner."""
        self.by_owner[owner_id].add(listener)
        await self._sync_binding(owner_id)

        def stop() -> None:
            self.by_owner[owner_id].discard(listener)
            if not self.by_owner[owner_id]:
                del self.by_owner[owner_id]
                task = asyncio.ensure_future(self._sync_binding(owner_id))
                self._unbinding.add(task)
                task.add_done_callback(self._unbinding.discard)
        return stop

    async def _sync_binding(self, owner_id: str) -> None:
        """Bind the owner's key while some page watches it, unbind it once none does."""
        async with self._binding:
            queue, exchange = self._queue, self._exchange
            wanted = bool(self.by_owner.get(owner_id))
            linked = self._connection is not None and not self._connection.is_closed
            if queue is None or exchange is None or not linked or wanted == (owner_id in self._bound):
                return  # cut off (the reconnection binds every watched owner), or already as wanted
            key = names.portfolio_updated_key(owner_id)
            try:  # a page never waits long on the broker: its figures come from the gateway, live or not
                if wanted:
                    await asyncio.wait_for(queue.bind(exchange, key), BINDING_SECONDS)
                    self._bound.add(owner_id)
                else:
                    await asyncio.wait_for(queue.unbind(exchange, key), BINDING_SECONDS)
                    self._bound.discard(owner_id)
            except (TimeoutError, aio_pika.exceptions.AMQPError) as error:
                log.warning("live_binding_failed", owner_id=owner_id, reason=repr(error))

    async def _sync_all_bindings(self) -> None:
        """After a reconnection: bind the owners whose pages opened meanwhile, unbind those that all closed (the
        robust connection restores the bindings it had)."""
        for owner_id in {*self.by_owner, *self._bound}:
            await self._sync_binding(owner_id)

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
        connection.reconnect_callbacks.add(lambda *_: asyncio.ensure_future(self._reconnected()))
        channel = await connection.channel()
        # Deliveries are acked, so that at most `prefetch` of a burst sit in this process; the rest wait in RabbitMQ.
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, names.PRICE_TICKED)
        self.queue_name = queue.name
        await queue.consume(self._on_message_acked)
        self._queue, self._exchange = queue, exchange
        await self._reconnected()  # pages opened before the connection are bound

    async def _reconnected(self) -> None:
        await self._sync_all_bindings()  # bindings first, then the pages reload: a reload then misses no update
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
