"""The topology declares on the real broker: durable queues, DLQs, and a poison message reaching its DLQ."""

import asyncio

import aio_pika

from contracts import names, topology


async def test_topology_declares_and_dead_letters_on_the_real_broker(rabbit_url: str) -> None:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel()
        await topology.declare_topology(channel)
        await topology.declare_topology(channel)  # idempotent
        queue = await channel.declare_queue(names.PRICE_REQUESTS_QUEUE, passive=True)
        events = await channel.get_exchange(names.EVENTS_EXCHANGE)
        await events.publish(aio_pika.Message(b"poison", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                             routing_key=names.PRICE_REQUESTED)
        message = await queue.get(timeout=5)
        await message.reject(requeue=False)
        dead_letters = await channel.declare_queue(names.dead_letter_queue(names.PRICE_REQUESTS_QUEUE), passive=True)
        for _ in range(50):
            dead = await dead_letters.get(fail=False)
            if dead is not None:
                break
            await asyncio.sleep(0.1)
        assert dead is not None and dead.body == b"poison"
        await dead.ack()
