"""The bus topology: durable exchanges, durable queues with a dead-letter exchange, and their bindings."""

from dataclasses import dataclass, field
from typing import Any

import aio_pika

from contracts import names


@dataclass(frozen=True)
class QueueSpec:
    """A durable work queue, the exchange it listens on, and the keys it binds."""

    name: str
    exchange: str
    routing_keys: tuple[str, ...]
    queue_type: str = "classic"
    extra_arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def dead_letter_queue(self) -> str:
        return names.dead_letter_queue(self.name)

    @property
    def arguments(self) -> dict[str, Any]:
        """Queue arguments; every service must declare a queue with exactly these."""
        return {
            "x-dead-letter-exchange": names.DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": self.name,
            "x-queue-type": self.queue_type,
            **self.extra_arguments,
        }


EXCHANGES: dict[str, aio_pika.ExchangeType] = {
    names.EVENTS_EXCHANGE: aio_pika.ExchangeType.TOPIC,
    names.COMMANDS_EXCHANGE: aio_pika.ExchangeType.TOPIC,
    names.DEAD_LETTER_EXCHANGE: aio_pika.ExchangeType.DIRECT,
}

PRICE_REQUESTS = QueueSpec(names.PRICE_REQUESTS_QUEUE, names.EVENTS_EXCHANGE, (names.PRICE_REQUESTED,))
PRICE_QUERIES = QueueSpec(
    names.PRICE_QUERIES_QUEUE, names.COMMANDS_EXCHANGE, (names.PRICE_RANGE, names.PRICE_AT, names.PRICE_LATEST)
)
PORTFOLIO_COMMANDS = QueueSpec(names.PORTFOLIO_COMMANDS_QUEUE, names.COMMANDS_EXCHANGE, ("portfolio.*", "transaction.*"))
PORTFOLIO_PRICE_EVENTS = QueueSpec(
    names.PORTFOLIO_PRICE_EVENTS_QUEUE,
    names.EVENTS_EXCHANGE,
    (names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE, names.PRICE_TICKED),
)

QUEUES: tuple[QueueSpec, ...] = (PRICE_REQUESTS, PRICE_QUERIES, PORTFOLIO_COMMANDS, PORTFOLIO_PRICE_EVENTS)


async def declare_topology(channel: aio_pika.abc.AbstractChannel, queues: tuple[QueueSpec, ...] = QUEUES) -> None:
    """Idempotently declare the exchanges, the given queues, their DLQs and bindings."""
    exchanges = {
        name: await channel.declare_exchange(name, kind, durable=True) for name, kind in EXCHANGES.items()
    }
    for spec in queues:
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        for key in spec.routing_keys:
            await queue.bind(exchanges[spec.exchange], routing_key=key)
        dead_letters = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": spec.queue_type}
        )
        await dead_letters.bind(exchanges[names.DEAD_LETTER_EXCHANGE], routing_key=spec.name)


async def ensure_topology(url: str, queues: tuple[QueueSpec, ...] = QUEUES) -> None:
    """Connect once and declare the topology, so that any service start order works."""
    connection = await aio_pika.connect(url)
    async with connection:
        await declare_topology(await connection.channel(), queues)
