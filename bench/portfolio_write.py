"""Benchmark: record → price → portfolio.updated, end to end over the real broker with the real price service.

Callers send `transaction.record` commands straight to the portfolio service (request/reply over RabbitMQ, no
HTTP), and a trade counts as done when its `portfolio.updated` (transaction_priced) arrives. The baseline is the
seed's design in the same run: a synchronous HTTP call to the price service per transaction.

`python -m bench.portfolio_write [callers] [per_caller]`
"""

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from contracts.portfolios import CreatePortfolio, RecordTransaction, Side
from contracts.rpc import RpcClient

from bench.common import Figure, percentile, plain, write_results
from bench.stack import running_stack
from bench.trades import seed_design_baseline, watch_priced


async def measure(rabbit_url: str, callers: int, per_caller: int) -> tuple[float, list[float]]:
    loop = asyncio.get_running_loop()
    priced: dict[str, asyncio.Future[float]] = {}
    watcher = await watch_priced(rabbit_url, priced)
    client = RpcClient(rabbit_url, timeout=120)
    await client.connect()
    try:
        portfolios = []
        for n in range(callers):
            reply = await client.call(CreatePortfolio(owner_id=f"bench-{n}", name="write bench"))
            portfolios.append((f"bench-{n}", reply.result["portfolio_id"]))
        latencies: list[float] = []

        async def caller(index: int) -> None:
            owner, portfolio_id = portfolios[index]
            for n in range(per_caller):
                at = datetime(2024, 1, 2, tzinfo=UTC) + timedelta(hours=(index * per_caller + n) % 6000)
                started = time.perf_counter()
                reply = await client.call(RecordTransaction(owner_id=owner, portfolio_id=portfolio_id, side=Side.BUY,
                                                            amount_btc=Decimal("0.01"), at=at))
                assert reply.ok, reply.error
                done = priced.setdefault(reply.result["transaction_id"], loop.create_future())
                latencies.append(await asyncio.wait_for(done, 120) - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        return callers * per_caller / (time.perf_counter() - started), latencies
    finally:
        await client.close()
        await watcher.close()


async def round_trip_cost(database_url: str, queries: int = 2000) -> tuple[float, float]:
    """(client CPU µs, wall µs) of one trivial asyncpg query on this machine: the floor under every handler."""
    connection = await asyncpg.connect(plain(database_url))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(queries):
            await connection.fetchval("SELECT $1::int", n)
        return ((time.process_time() - cpu) / queries * 1e6, (time.perf_counter() - wall) / queries * 1e6)
    finally:
        await connection.close()


def main() -> None:
    callers = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    per_caller = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with running_stack("price", "portfolio") as stack:
        baseline = asyncio.run(seed_design_baseline(stack.services["price"].url))
        rate, latencies = asyncio.run(measure(stack.rabbit_url, callers, per_caller))
        query_cpu, query_wall = asyncio.run(round_trip_cost(stack.database_urls["portfolio"]))
    p99 = percentile(latencies, 0.99) * 1000
    write_results("portfolio_write", [
        Figure(f"record → priced → updated, {callers} callers", rate, "tx/s",
               "seed design: sync HTTP price call per tx", baseline, "≥ 1,000 tx/s", rate >= 1000),
        Figure("record → priced → updated p99", p99, "ms", "p50", percentile(latencies, 0.5) * 1000, "< 250 ms",
               p99 < 250),
        Figure("one asyncpg round trip, client CPU", query_cpu, "µs", "its wall time", query_wall, "report", True)],
        f"closed loop over RabbitMQ: {callers} callers, each with its own portfolio, record {per_caller} buys in time "
        "order; each waits for its trade's portfolio.updated (transaction_priced), then records the next; one copy of "
        "the portfolio and price services; the load generator shares the 2 cores")


if __name__ == "__main__":
    main()
