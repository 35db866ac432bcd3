"""Benchmark: concurrent request/reply. FastStream's broker.request (FastStream #1318 serializes calls) against
contracts.rpc.RpcClient (a reply queue and a correlation map), 32 concurrent callers, the real price service."""

import asyncio
import time

from contracts.prices import LatestPriceRequested
from contracts.rpc import RpcClient
from faststream.rabbit import RabbitBroker

from bench.common import Figure, percentile, write_results
from bench.stack import running_stack
from contracts import names

CALLERS, CALLS_EACH = 32, 30


async def run_callers(call) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    latencies: list[float] = []

    async def caller() -> None:
        for _ in range(CALLS_EACH):
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return CALLERS * CALLS_EACH / (time.perf_counter() - started), latencies


async def measure(rabbit_url: str) -> list[Figure]:
    client = RpcClient(rabbit_url, timeout=30)
    await client.connect()
    ours, our_latencies = await run_callers(lambda: client.call(LatestPriceRequested()))
    await client.close()
    broker = RabbitBroker(rabbit_url, logger=None)
    await broker.start()
    try:
        theirs, their_latencies = await run_callers(lambda: broker.request(
            LatestPriceRequested().to_json(), exchange=names.COMMANDS_EXCHANGE, routing_key=names.PRICE_LATEST,
            timeout=30))
    finally:
        await broker.stop()
    return [Figure(f"RpcClient, {CALLERS} concurrent callers", ours, "req/s", "FastStream broker.request", theirs,
                   "faster than broker.request under concurrency", ours > theirs),
            Figure("RpcClient p50 latency", percentile(our_latencies, 0.5) * 1000, "ms", "broker.request p50",
                   percentile(their_latencies, 0.5) * 1000, "report", True)]


def main() -> None:
    with running_stack("price") as stack:
        figures = asyncio.run(measure(stack.rabbit_url))
    write_results("rpc_concurrency", figures, "price.latest answered by the real price service; the gateway and "
                                              "the portfolio service use RpcClient")


if __name__ == "__main__":
    main()
