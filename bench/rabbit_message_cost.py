"""Benchmark: RabbitMQ's CPU per message by delivery setting (persistent or not, confirmed or not, acked or not).

Each variant publishes paced messages (200/s, 1.2 KB, about a portfolio.updated) to a queue of its own and consumes
them (prefetch 100); the node's CPU (from /proc, net of its idle rate just before) is divided by the messages. It
prices what each setting of the Delivery table in docs/architecture.md costs the broker. On a shared machine set
BITFOLIO_BENCH_RABBIT_URL and BITFOLIO_BENCH_RABBIT_PID to a private node (bench/cpu.py).

`python -m bench.rabbit_message_cost [--rate 200] [--seconds 8]`
"""

import argparse
import asyncio
import time
from dataclasses import dataclass

import aio_pika

from bench.common import RABBIT_URL
from bench.cpu import CpuMeter, rabbitmq_node

BODY = b"x" * 1200


@dataclass(frozen=True)
class Variant:
    name: str
    persistent: bool
    confirmed: bool
    durable: bool
    acked: bool
    topic: bool = False


VARIANTS = (
    Variant("transient, no confirm, no ack", False, False, False, False),
    Variant("transient, no confirm, acked", False, False, False, True),
    Variant("transient, no confirm, acked, via a topic exchange", False, False, False, True, topic=True),
    Variant("transient, confirmed, acked", False, True, False, True),
    Variant("transient, confirmed, acked, durable queue", False, True, True, True),
    Variant("persistent, confirmed, acked, durable queue", True, True, True, True),
)


async def cost(url: str, variant: Variant, rate: float, seconds: float) -> float:
    """RabbitMQ CPU microseconds per message of this variant."""
    connection = await aio_pika.connect(url)
    async with connection:
        publishing = await connection.channel(publisher_confirms=variant.confirmed)
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=100)
        queue = await consuming.declare_queue(f"bench.cost.{id(variant)}", durable=variant.durable,
                                              auto_delete=not variant.durable)
        exchange = publishing.default_exchange
        key = queue.name
        if variant.topic:
            exchange = await publishing.declare_exchange("bench.cost.topic", aio_pika.ExchangeType.TOPIC,
                                                         auto_delete=True)
            await queue.bind("bench.cost.topic", "cost.#")
            key = "cost.one"
        received = asyncio.Event()
        count, total = 0, int(rate * seconds)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            count += 1
            if variant.acked:
                await message.ack()
            if count == total:
                received.set()

        await queue.consume(on_message, no_ack=not variant.acked)
        with CpuMeter({"rabbitmq": rabbitmq_node()}) as idle:
            await asyncio.sleep(2)
        idle_rate = idle.seconds()["rabbitmq"] / 2
        mode = aio_pika.DeliveryMode.PERSISTENT if variant.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        with CpuMeter({"rabbitmq": rabbitmq_node()}) as used:
            started = time.perf_counter()
            sent = []
            for n in range(total):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                sent.append(asyncio.create_task(exchange.publish(
                    aio_pika.Message(BODY, delivery_mode=mode, message_id=str(n), content_type="application/json"),
                    routing_key=key)))
            await asyncio.gather(*sent)
            await asyncio.wait_for(received.wait(), 60)
            elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
    return max(0.0, used.seconds()["rabbitmq"] - idle_rate * elapsed) * 1e6 / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=8)
    options = parser.parse_args()
    print(f"RabbitMQ CPU per message at {options.rate:g} messages/s:")
    for variant in VARIANTS:
        micros = asyncio.run(cost(RABBIT_URL, variant, options.rate, options.seconds))
        print(f"  {variant.name:<55} {micros:6.0f} µs")


if __name__ == "__main__":
    main()
