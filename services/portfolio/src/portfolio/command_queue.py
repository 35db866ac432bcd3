"""portfolio.commands consumed through aiormq directly: each command's reply, then its ack, after its batch commits.

FastStream's consume path (its middlewares, dependency solver and reply publisher) cost about an eighth of this
service's CPU a recorded trade, more than the handler's own decoding. Here a delivery goes straight to the handler,
as the gateway's reply queue does (contracts.consuming), with the same rules as every other subscriber: a command
past its caller's deadline and one that cannot be read are dead-lettered with the reason, a failure is retried up to
the policy's attempts and then dead-lettered (the caller gets a typed error), an outage is requeued until it passes.
Unlike a reply queue, a command is acknowledged one by one and only once its reply has left: a command still in a
batch must never be covered by a `multiple` ack."""

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from contracts.consuming import Consumption, consume
from contracts.faststream_support import AttemptPolicy
from contracts.observability import bind_correlation
from contracts.portfolios import COMMANDS
from contracts.rpc import deadline_passed
from contracts.topology import PORTFOLIO_COMMANDS
from faststream.exceptions import AckMessage
from faststream.rabbit import RabbitBroker

from contracts import ErrorCode, Reply
from portfolio.messaging import HANDLER_SECONDS, MESSAGES, WriteBatcher, dead_letter, decoded, guarded, run_command
from portfolio.service import PortfolioService

log = structlog.get_logger()
STOP_SECONDS = 10.0
"""How long a stop waits for the commands in hand to be answered (the rest are redelivered to another copy)."""


@dataclass(frozen=True)
class Delivery:
    """A delivery in the shape the attempt and dead-letter helpers read (that of FastStream's RabbitMessage)."""

    raw_message: DeliveredMessage
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    content_type: str | None

    @classmethod
    def of(cls, delivered: DeliveredMessage) -> "Delivery":
        properties = delivered.header.properties
        return cls(delivered, delivered.body, dict(properties.headers or {}), properties.message_id,
                   properties.correlation_id, properties.reply_to, properties.content_type)


async def answer(service: PortfolioService, broker: RabbitBroker, writer: WriteBatcher, policy: AttemptPolicy,
                 delivery: Delivery) -> Reply | None:
    """Any portfolio.* or transaction.* command → its Reply (None: nothing to answer); a write commits first."""
    if deadline_passed(delivery.headers):  # its caller answered 503 already: applying it now would surprise
        await dead_letter(broker, PORTFOLIO_COMMANDS, delivery, "expired: the caller had stopped waiting")
        return None
    with HANDLER_SECONDS.labels(PORTFOLIO_COMMANDS.name).time():
        command, refusal = await decoded(broker, PORTFOLIO_COMMANDS, delivery, COMMANDS)
        if command is None:
            reply = Reply.failure(None, ErrorCode.VALIDATION, refusal)
        else:
            bind_correlation(command.correlation_id, command=command.routing_key)
            handled, result = await guarded(broker, PORTFOLIO_COMMANDS, delivery,
                                            lambda: run_command(service, writer, command), policy)
            reply = result if handled and result is not None else Reply.failure(
                command, ErrorCode.UNAVAILABLE, "The portfolio service could not handle this request; it has been "
                "set aside for an operator.")
        MESSAGES.labels(PORTFOLIO_COMMANDS.name, "ok" if reply.ok else reply.error.code).inc()
        return reply


class CommandQueue:
    """The consumer of portfolio.commands on a robust connection of its own (it consumes again after a reconnect)."""

    def __init__(self, rabbit_url: str, service: PortfolioService, broker: RabbitBroker, writer: WriteBatcher,
                 policy: AttemptPolicy, prefetch: int = 100) -> None:
        self.rabbit_url, self.service, self.broker, self.writer = rabbit_url, service, broker, writer
        self.policy, self.prefetch = policy, prefetch
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractRobustChannel | None = None
        self.in_hand: set[asyncio.Task[None]] = set()
        self.consumption: Consumption | None = None

    async def start(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.rabbit_url, client_properties={"connection_name": "portfolio commands"})
        # No publisher confirms: a reply is transient, to the caller's own queue; frames on a channel keep their order,
        # so the broker has the reply before the command's ack, and a lost connection loses the ack with it (the
        # command comes again and the inbox answers with the stored reply).
        self.channel = await self.connection.channel(publisher_confirms=False)
        await self.channel.set_qos(prefetch_count=self.prefetch)
        self.consumption = await consume(self.channel, PORTFOLIO_COMMANDS.name, self.on_delivery)

    async def on_delivery(self, delivered: DeliveredMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.in_hand.add(task)
        try:
            await self.handle(delivered)
        finally:
            if task is not None:
                self.in_hand.discard(task)

    async def handle(self, delivered: DeliveredMessage) -> None:
        delivery = Delivery.of(delivered)
        try:
            reply = await answer(self.service, self.broker, self.writer, self.policy, delivery)
        except AckMessage:  # a retry copy was queued: it answers the caller
            await self.settle(delivered, ack=True)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an outage (after its backoff): the broker delivers it again
            log.warning("command_requeued", reason=repr(error))
            await self.settle(delivered, ack=False)
            return
        if reply is not None and delivery.reply_to:
            await delivered.channel.basic_publish(
                reply.to_json(), exchange="", routing_key=delivery.reply_to,
                properties=aiormq.spec.Basic.Properties(content_type="application/json",
                                                        correlation_id=delivery.correlation_id))
        await self.settle(delivered, ack=True)

    @staticmethod
    async def settle(delivered: DeliveredMessage, *, ack: bool) -> None:
        # A channel closed meanwhile (a reconnect) took its deliveries with it: they come again, nothing to settle.
        with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
            if ack:
                await delivered.channel.basic_ack(delivered.delivery_tag or 0)
            else:
                await delivered.channel.basic_nack(delivered.delivery_tag or 0, requeue=True)

    @property
    def consuming(self) -> bool:
        """Whether commands reach this copy (for readiness)."""
        return (self.connection is not None and not self.connection.is_closed and self.consumption is not None
                and not self.consumption.stopped)

    async def stop(self) -> None:
        """Take no new command, answer those in hand (for at most STOP_SECONDS), then close."""
        if self.connection is None:
            return
        if self.consumption is not None:
            await self.consumption.stop()
        if self.in_hand:
            await asyncio.wait(self.in_hand, timeout=STOP_SECONDS)
        await self.connection.close()
        self.connection = None
