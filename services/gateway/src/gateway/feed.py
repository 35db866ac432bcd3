"""Each gateway copy's own queue of events: portfolio.updated feeds the read model, access.revoked the revocations.

The queue is exclusive and not durable: it lives as long as the copy's connection. When the connection drops, events
can be missed, so the read model goes cold until the queue consumes again, and the revocations are read anew from
the database."""

import asyncio
from collections.abc import Awaitable, Callable
from uuid import uuid4

import aio_pika
import structlog
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from contracts.consuming import BatchedAcks, consume
from contracts.sessions import AccessRevoked

from contracts import ContractError, decode, names
from gateway.reads import FeedUpdate, PortfolioReads

log = structlog.get_logger()


class EventFeed:
    def __init__(self, rabbit_url: str, reads: PortfolioReads, on_revoked: Callable[[AccessRevoked], None],
                 on_reconnected: Callable[[], Awaitable[None]], prefetch: int = 500,
                 name: str = "gateway event feed") -> None:
        self.rabbit_url, self.reads, self.prefetch, self.name = rabbit_url, reads, prefetch, name
        self.on_revoked, self.on_reconnected = on_revoked, on_reconnected
        self.queue_name = f"{names.READ_MODEL_QUEUE_PREFIX}{uuid4().hex}"
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._acks = BatchedAcks(prefetch)

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.rabbit_url,
                                                         client_properties={"connection_name": self.name})
        self._connection.close_callbacks.add(lambda *_: self.reads.go_cold())
        self._connection.reconnect_callbacks.add(lambda *_: asyncio.ensure_future(self._reconnected()))
        channel = await self._connection.channel()
        # Deliveries are acked (in batches: the queue dies with the connection anyway), so that at most `prefetch` of
        # a burst sit in this process; the rest wait in RabbitMQ.
        await channel.set_qos(prefetch_count=self.prefetch)
        self._exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                                        durable=True)
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        # every owner's portfolio.updated (routed as portfolio.updated.<owner_id>)
        await queue.bind(self._exchange, names.PORTFOLIO_UPDATED_ANY_OWNER)
        await queue.bind(self._exchange, names.ACCESS_REVOKED)
        await consume(channel, queue.name, self._on_message_acked)
        self.reads.go_live()

    async def _reconnected(self) -> None:
        """aio-pika has declared, bound and consumed the queue again: entries kept from now on see every event."""
        self.reads.go_live()
        log.info("read_model_live_again")
        await self.on_reconnected()

    async def close(self) -> None:
        self.reads.go_cold()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def announce(self, revoked: AccessRevoked) -> None:
        """Tell every copy (this one included) of ended tokens; a lost message is caught by the periodic sync."""
        if self._exchange is None:
            return
        try:
            await self._exchange.publish(aio_pika.Message(revoked.to_json(), content_type="application/json",
                                                          message_id=revoked.message_id),
                                         routing_key=revoked.routing_key)
        except (OSError, aio_pika.exceptions.AMQPError, RuntimeError) as error:
            log.warning("revocation_not_announced", reason=repr(error))

    async def _on_message_acked(self, message: DeliveredMessage) -> None:
        try:
            if message.routing_key == names.ACCESS_REVOKED:
                self.on_revoked(decode(AccessRevoked, message.body))
            else:
                self.reads.apply_update(FeedUpdate.read(message.body))
        except ContractError as error:
            log.warning("feed_event_unreadable", reason=str(error))
        finally:
            self._acks.handled(message)


async def every(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` every `seconds` until cancelled; a failure is logged and tried again next time."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await action()
        except Exception as error:  # the database may be down for a while; the next round tries again
            log.warning("periodic_task_failed", reason=repr(error))
