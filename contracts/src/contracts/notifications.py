"""Publishing notifications: transient, no publisher confirm, after the commit they describe.

A notification (`Message.notification`, e.g. portfolio.updated) tells live readers that something they may show
has changed. Losing one costs a stale page until its next read, so it skips what a command or a price answer
needs: no persistence and no confirm round trip (each costs RabbitMQ and the publisher CPU per message), and no
outbox row (three statements per message). A publish that fails is logged and dropped, never retried.
"""

import asyncio
from collections.abc import Iterable

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from contracts import names
from contracts.envelope import Message

log = structlog.get_logger()
PUBLISH_SECONDS = 1.0
"""The longest a notification's publish may take before it is dropped."""


class Notifier:
    def __init__(self, url: str, exchange: str = names.EVENTS_EXCHANGE) -> None:
        self._url, self._exchange_name = url, exchange
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self.dropped = 0
        """Notifications that could not be handed to the broker (logged, not retried)."""

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        self._channel = await self._connection.channel(publisher_confirms=False)
        await self._channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def publish(self, messages: Iterable[Message]) -> None:
        """Hand each notification to the broker; without confirms each call returns once the frame is written."""
        for message in messages:
            try:
                if (self._channel is None or self._connection is None or self._connection.is_closed
                        or self._channel.is_closed):  # being restored: dropped at once, never waited for
                    raise ConnectionError("not connected to the broker")
                async with asyncio.timeout(PUBLISH_SECONDS):  # the writer awaits this after its commit
                    # straight to aiormq, as aio-pika's Exchange.publish does, without building its Message first
                    channel = await self._channel.get_underlay_channel()
                    if channel.is_closed:
                        raise ConnectionError("the broker channel is being restored")
                    await channel.basic_publish(
                        message.to_json(), exchange=self._exchange_name, routing_key=message.publish_key,
                        properties=aiormq.spec.Basic.Properties(
                            content_type="application/json", message_id=message.message_id,
                            correlation_id=message.correlation_id,
                            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT))
            except Exception as error:  # the next read heals a lost notification; the write has committed
                self.dropped += 1
                log.warning("notification_dropped", routing_key=message.publish_key, reason=repr(error))
