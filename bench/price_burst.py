"""Benchmark: a burst of 14,400 price.requested against the real price service, its memory with the bounded
prefetch (PRICE_CONSUMER_PREFETCH, default) beside the same service with the largest prefetch AMQP allows (the
old, unbounded behaviour), measured in the same run."""

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime

import aio_pika
from contracts.prices import PriceRequested
from price.settings import Settings

from bench.common import Figure, write_results
from bench.stack import rss_mb, running_stack
from contracts import names

BURST = 14_400
FIRST_2024_HOUR = 1704067200
UNBOUNDED_PREFETCH = 65535  # the largest prefetch AMQP allows: far above the burst, so nothing waits in RabbitMQ


async def burst(rabbit_url: str, pid: int) -> tuple[float, float, float, float]:
    """(RSS before, peak RSS during, RSS after, seconds until every request is answered)."""
    before = rss_mb(pid)
    peak = before
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(names.EVENTS_EXCHANGE)
        answers = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in (names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE):
            await answers.bind(events, key)
        answered = asyncio.Event()
        count = 0

        async def on_answer(_: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            count += 1
            if count == BURST:
                answered.set()

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.05)

        await answers.consume(on_answer, no_ack=True)
        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        requests = [PriceRequested(transaction_id=f"tx-{i}", portfolio_id=f"p-{i % 100}",
                                   at=datetime.fromtimestamp(FIRST_2024_HOUR + (i % 6000) * 3600 + 60, UTC))
                    for i in range(BURST)]
        for chunk in range(0, BURST, 1000):
            await asyncio.gather(*(events.publish(aio_pika.Message(r.to_json(), message_id=r.message_id),
                                                  routing_key=names.PRICE_REQUESTED)
                                   for r in requests[chunk:chunk + 1000]))
        await asyncio.wait_for(answered.wait(), 600)
        seconds = time.perf_counter() - started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    await asyncio.sleep(2)
    return before, peak, rss_mb(pid), seconds


def run_with_prefetch(prefetch: int) -> tuple[float, float, float, float]:
    os.environ["PRICE_CONSUMER_PREFETCH"] = str(prefetch)
    try:
        with running_stack("price") as stack:
            process = stack.services["price"].process
            assert process is not None
            return asyncio.run(burst(stack.rabbit_url, process.pid))
    finally:
        del os.environ["PRICE_CONSUMER_PREFETCH"]


def main() -> None:
    bounded = Settings().consumer_prefetch
    _, unbounded_peak, unbounded_after, unbounded_seconds = run_with_prefetch(UNBOUNDED_PREFETCH)
    before, peak, after, seconds = run_with_prefetch(bounded)
    figures = [
        Figure(f"price service peak RSS over a {BURST:,}-request burst (prefetch {bounded})", peak, "MB",
               f"prefetch {UNBOUNDED_PREFETCH} (unbounded)", unbounded_peak, "flat: ≤ RSS at rest + 25 MB",
               peak <= before + 25),
        Figure("price service RSS after the burst", after, "MB", f"prefetch {UNBOUNDED_PREFETCH} (unbounded)",
               unbounded_after, "≤ the unbounded baseline", after <= unbounded_after),
        Figure(f"time to answer the {BURST:,} requests", seconds, "s", f"prefetch {UNBOUNDED_PREFETCH} (unbounded)",
               unbounded_seconds, "≤ 1.5× the unbounded baseline", seconds <= 1.5 * unbounded_seconds),
    ]
    write_results("price_burst", figures, f"{BURST:,} price.requested published at once to one price service copy "
                                          f"(2024 hours, stored candles); RSS sampled every 50 ms; RSS at rest "
                                          f"before the bounded run: {before:.1f} MB")


if __name__ == "__main__":
    main()
