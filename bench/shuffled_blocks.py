"""Benchmark: three blocks of 1,000 market-priced trades at shuffled 2024 times imported one after another into one
portfolio, each timed until priced; a later block lands among the earlier ones, so it should cost no more than the
first (issue 12, "Portfolio engine").

`python -m bench.shuffled_blocks [--blocks 3] [--block-size 1000] [--post]` (--post: each trade posted one by one
through POST /v1/portfolios/{id}/transactions instead of one import per block)
"""

import argparse
import asyncio
import os
import random

import httpx

from bench.common import Figure, write_results
from bench.cpu import CpuMeter, fixed
from bench.market_trades import GatewayUser, hourly_opens, market_hours, random_trades, trades_csv
from bench.stack import running_stack
from scripts.launcher import Launcher

GOAL_RATIO = 1.5


async def measure(stack: Launcher, blocks: int, size: int, post: bool) -> list[tuple[float, float]]:
    """(seconds until priced, portfolio-service CPU seconds) per block, in import order."""
    rng = random.Random(size)
    hours = market_hours(hourly_opens())
    # each block holds on its own at every instant, so any union of blocks never sells more than it holds
    trade_blocks = [random_trades(size, rng, hours) for _ in range(blocks)]
    portfolio_pid = stack.services["portfolio"].process.pid  # type: ignore[union-attr]
    results = []
    async with httpx.AsyncClient(base_url=stack.services["gateway"].url, timeout=600) as api:
        user = await GatewayUser.sign_up(api, "bench-blocks@example.com")
        portfolio_id = await user.create_portfolio("shuffled blocks")
        for number, block in enumerate(trade_blocks, start=1):
            with CpuMeter({"portfolio": fixed(portfolio_pid)}) as cpu:
                if post:
                    seconds, _ = await user.post_until_priced(portfolio_id, block, number * size, 900)
                else:
                    seconds, _ = await user.import_until_priced(portfolio_id, trades_csv(block), number * size, 900)
            results.append((seconds, cpu.seconds()["portfolio"]))
            print(f"block {number}: {seconds:.1f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--post", action="store_true", help="post each trade instead of importing each block")
    options = parser.parse_args()
    with running_stack("price", "portfolio", "gateway", env={"GATEWAY_REQUEST_TIMEOUT_SECONDS": "120"}) as stack:
        results = asyncio.run(measure(stack, options.blocks, options.block_size, options.post))
    (first, first_cpu), size = results[0], options.block_size
    how = "posted one by one" if options.post else "imported"
    figures = []
    for number, (seconds, cpu) in enumerate(results[1:], start=2):
        figures.append(Figure(f"block {number} of {size:,} shuffled trades {how} until priced", seconds, "s",
                              "block 1", first, f"≤ {GOAL_RATIO:g}× block 1", seconds / first <= GOAL_RATIO))
        figures.append(Figure(f"block {number} ({how}): portfolio service CPU per trade", cpu / size * 1000, "ms",
                              "block 1", first_cpu / size * 1000, "report", True))
    write_results("shuffled_posts" if options.post else "shuffled_blocks", figures,
                  f"{options.blocks} blocks of {size:,} random 2024 buys and sells (each block within its own "
                  f"holdings, in time order within its file, spread over the whole year) {how} through the gateway "
                  "into one portfolio, one block after another; each timed from the upload until GET "
                  "/v1/portfolios/{id} shows none pending" f"; load average at the end {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores (other work shares the machine)")


if __name__ == "__main__":
    main()
