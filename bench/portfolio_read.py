"""Benchmark: reading the metrics of a 14,400-transaction portfolio over the bus, and the service's RSS."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from contracts.portfolios import CreatePortfolio, GetPortfolio, ImportTransactions, RecordTransaction, Side
from contracts.rpc import RpcClient
from portfolio.domain import CHECKPOINT_EVERY

from bench.common import Figure, median_ms, plain, write_results
from bench.stack import rss_mb, running_stack

TRANSACTIONS, READS = 14_400, 200


def csv_of_trades() -> str:
    lines = ["side,amount_btc,at,fee_usd,price_usd,note"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(TRANSACTIONS):
        side = "sell" if n % 4 == 3 else "buy"
        at = (start + timedelta(minutes=25 * n)).isoformat().replace("+00:00", "Z")
        lines.append(f"{side},{'0.002' if side == 'sell' else '0.003'},{at},1.25,{40000 + n % 2000},")
    return "\n".join(lines) + "\n"


async def timed_records(client: RpcClient, pid: str, at: datetime, times: int = 5) -> list[float]:
    """Record typed-price buys at `at`; the time of each command, end to end over the bus."""
    samples = []
    for n in range(times):
        started = time.perf_counter()
        reply = await client.call(RecordTransaction(owner_id="bench", portfolio_id=pid, side=Side.BUY,
                                                    amount_btc=Decimal("0.001"), at=at + timedelta(seconds=n),
                                                    price_usd=Decimal("42000")))
        samples.append(time.perf_counter() - started)
        assert reply.ok, reply.error
    return samples


async def back_dated(rabbit_url: str, pid: str) -> dict[str, list[float]]:
    """A new trade at the end, at 90 % of the timeline (from the checkpoint before it) and at its start (all)."""
    client = RpcClient(rabbit_url, timeout=120)
    await client.connect()
    try:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        span = timedelta(minutes=25 * TRANSACTIONS)
        return {"end": await timed_records(client, pid, start + span + timedelta(days=1)),
                "90%": await timed_records(client, pid, start + span * 9 / 10),
                "start": await timed_records(client, pid, start - timedelta(hours=1))}
    finally:
        await client.close()


async def run(rabbit_url: str, database_url: str) -> tuple[list[float], list[float], float, str]:
    client = RpcClient(rabbit_url, timeout=120)
    await client.connect()
    try:
        created = await client.call(CreatePortfolio(owner_id="bench", name="14,400 trades"))
        pid = created.result["portfolio_id"]
        started = time.perf_counter()
        report = await client.call(ImportTransactions(owner_id="bench", portfolio_id=pid, csv_text=csv_of_trades()))
        imported = time.perf_counter() - started
        assert report.ok and report.result["imported"] == TRANSACTIONS, report.error
        await client.call(GetPortfolio(owner_id="bench", portfolio_id=pid))  # warm: computes the lazy IRR once
        reads = []
        for _ in range(READS):
            started = time.perf_counter()
            reply = await client.call(GetPortfolio(owner_id="bench", portfolio_id=pid))
            reads.append(time.perf_counter() - started)
            assert reply.result["metrics"]["transaction_count"] == TRANSACTIONS
    finally:
        await client.close()
    connection = await asyncpg.connect(plain(database_url))
    try:
        raw = []
        for _ in range(READS):
            started = time.perf_counter()
            await connection.fetchrow("SELECT metrics::text FROM portfolios WHERE portfolio_id = $1", pid)
            raw.append(time.perf_counter() - started)
    finally:
        await connection.close()
    return reads, raw, imported, pid


def main() -> None:
    with running_stack("price", "portfolio") as stack:
        reads, raw, imported, pid = asyncio.run(run(stack.rabbit_url, stack.database_urls["portfolio"]))
        rss = rss_mb(stack.services["portfolio"].process.pid)
        writes = asyncio.run(back_dated(stack.rabbit_url, pid))
    read_ms = median_ms(reads)
    write_results("portfolio_read", [
        Figure("portfolio.get at 14,400 transactions (median, over RabbitMQ)", read_ms, "ms",
               "raw asyncpg SELECT of the metrics row", median_ms(raw), "≤ 50 ms", read_ms <= 50),
        Figure("portfolio service RSS after the import and reads", rss, "MB", "goal", 300, "≤ 300 MB", rss <= 300),
        Figure("record a trade at the end of 14,400 (median)", median_ms(writes["end"]), "ms",
               "a trade before all others (full recompute)", median_ms(writes["start"]), "O(1): far below the baseline",
               median_ms(writes["end"]) < median_ms(writes["start"]) / 2),
        Figure("record a trade back-dated to 90 % of the timeline (median)", median_ms(writes["90%"]), "ms",
               "a trade before all others (full recompute)", median_ms(writes["start"]),
               "from its time onward: far below the baseline",
               median_ms(writes["90%"]) < median_ms(writes["start"]) / 2),
    ], f"reads come from the projection row; the IRR is computed once per new latest price and cached. Setting up "
       f"the portfolio (one import command of {TRANSACTIONS:,} typed-price rows) took {imported:.1f} s. Writes: typed-price "
       f"buys under average cost; a back-dated one replays from the ledger checkpoint (every {CHECKPOINT_EVERY} trades) "
       "before its time.")


if __name__ == "__main__":
    main()
