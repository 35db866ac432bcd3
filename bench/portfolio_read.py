"""Benchmark: reading the metrics of a 14,400-transaction portfolio over the bus, and the service's RSS."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from contracts.portfolios import CreatePortfolio, GetPortfolio, ImportTransactions
from contracts.rpc import RpcClient

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


async def run(rabbit_url: str, database_url: str) -> tuple[list[float], list[float], float]:
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
    return reads, raw, imported


def main() -> None:
    with running_stack("price", "portfolio") as stack:
        reads, raw, imported = asyncio.run(run(stack.rabbit_url, stack.database_urls["portfolio"]))
        rss = rss_mb(stack.services["portfolio"].process.pid)
    read_ms = median_ms(reads)
    write_results("portfolio_read", [
        Figure("portfolio.get at 14,400 transactions (median, over RabbitMQ)", read_ms, "ms",
               "raw asyncpg SELECT of the metrics row", median_ms(raw), "≤ 50 ms", read_ms <= 50),
        Figure("portfolio service RSS after the import and reads", rss, "MB", "goal", 300, "≤ 300 MB", rss <= 300),
    ], f"reads come from the projection row; the IRR is computed once per new latest price and cached. Setting up "
       f"the portfolio (one import command of {TRANSACTIONS:,} typed-price rows) took {imported:.1f} s.")


if __name__ == "__main__":
    main()
