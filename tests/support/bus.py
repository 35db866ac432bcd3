"""Test helpers on the real broker: listen to events, publish raw messages, read a dead-letter queue."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts import names


@dataclass
class EventListener:
    """An exclusive queue bound to some event keys; messages land in `received`."""

    queue: aio_pika.abc.AbstractQueue
    received: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 10) -> AbstractIncomingMessage:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def collect(self, count: int, timeout: float = 20) -> list[AbstractIncomingMessage]:
        return [await self.next(timeout) for _ in range(count)]

    async def quiet_for(self, seconds: float) -> bool:
        """True when nothing more arrives within `seconds`."""
        try:
            await asyncio.wait_for(self.received.get(), seconds)
        except TimeoutError:
            return True
        return False


@contextlib.asynccontextmanager
async def listening(rabbit_url: str, *routing_keys: str) -> AsyncIterator[EventListener]:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in routing_keys:
            await queue.bind(exchange, routing_key=key)
        listener = EventListener(queue)
        await queue.consume(listener.received.put, no_ack=True)
        yield listener


async def publish_raw(rabbit_url: str, exchange_name: str, routing_key: str, body: bytes, **properties: object) -> None:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties),  # type: ignore[arg-type]
            routing_key=routing_key,
        )


async def dead_letters(rabbit_url: str, queue_name: str, expected: int, timeout: float = 10) -> list[AbstractIncomingMessage]:
    """Take `expected` messages from the DLQ of `queue_name` (acking them), waiting up to `timeout`."""
    connection = await aio_pika.connect(rabbit_url)
    taken: list[AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names.dead_letter_queue(queue_name), passive=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(taken) < expected and loop.time() < deadline:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            taken.append(message)
    return taken
