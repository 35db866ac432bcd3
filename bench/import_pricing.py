"""Benchmark: import N market-priced trades through the gateway until none is pending, beside the same file with
typed prices, with the CPU each process spends per trade (issue 12, "Portfolio engine").

`python -m bench.import_pricing [--trades 2000 [14400 …]]`
"""

import argparse
import asyncio
import os
import random

import httpx

from bench.common import Figure, write_results
from bench.cpu import CpuMeter, fixed, postgres_backends, rabbitmq_node
from bench.market_trades import GatewayUser, hourly_opens, market_hours, random_trades, trades_csv
from bench.stack import running_stack
from scripts.launcher import Launcher

GOAL_RATIO = 2.0
PROCESSES = ("portfolio", "price", "gateway", "postgres", "rabbitmq", "bench client")


def meter_for(stack: Launcher) -> CpuMeter:
    databases = [url.rsplit("/", 1)[1] for url in stack.database_urls.values()]
    return CpuMeter({**{name: fixed(stack.services[name].process.pid)  # type: ignore[union-attr]
                        for name in ("portfolio", "price", "gateway")},
                     "postgres": postgres_backends(databases), "rabbitmq": rabbitmq_node(),
                     "bench client": fixed(os.getpid())})


async def measure(stack: Launcher, count: int) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """(market-priced seconds, typed seconds, CPU seconds per process for each)."""
    opens = hourly_opens()
    trades = random_trades(count, random.Random(count), market_hours(opens))
    async with httpx.AsyncClient(base_url=stack.services["gateway"].url, timeout=600) as api:
        user = await GatewayUser.sign_up(api, f"bench-import-{count}@example.com")
        typed_id = await user.create_portfolio("typed prices")
        market_id = await user.create_portfolio("market prices")
        with meter_for(stack) as typed_cpu:
            typed, typed_metrics = await user.import_until_priced(typed_id, trades_csv(trades, opens), count, 600)
        with meter_for(stack) as market_cpu:
            market, market_metrics = await user.import_until_priced(market_id, trades_csv(trades), count, 600)
    # the same trades at the same prices: a benchmark that priced them wrong would not be measuring the work
    for figure in ("invested_usd", "holdings_btc", "realized_pnl_usd", "cost_basis_usd"):
        assert typed_metrics[figure] == market_metrics[figure], (figure, typed_metrics, market_metrics)
    return market, typed, market_cpu.seconds(), typed_cpu.seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, nargs="+", default=[2000, 14_400], help="sizes to measure, one stack each")
    sizes = parser.parse_args().trades
    figures = []
    for count in sizes:
        with running_stack("price", "portfolio", "gateway", env={"GATEWAY_REQUEST_TIMEOUT_SECONDS": "120"}) as stack:
            market, typed, market_cpu, typed_cpu = asyncio.run(measure(stack, count))
        ratio = market / typed
        figures.append(Figure(f"import {count:,} market-priced trades until priced", market, "s",
                              "the same file with typed prices", typed, f"≤ {GOAL_RATIO:g}× typed",
                              ratio <= GOAL_RATIO))
        for name in PROCESSES:
            figures.append(Figure(f"CPU per trade, {name} ({count:,} market-priced)",
                                  market_cpu[name] / count * 1000, "ms", "typed prices",
                                  typed_cpu[name] / count * 1000, "report", True))
    write_results("import_pricing", figures,
                  "generic CSV of random 2024 buys and sells (sells within holdings) uploaded to POST "
                  "/v1/portfolios/{id}/transactions/import, timed until GET /v1/portfolios/{id} shows none pending; "
                  "the baseline is the same file with each row's price typed (price_at of its hour), into a second "
                  "portfolio of the same user, which must end with the same figures. CPU from /proc: each service's "
                  "process, the Postgres backends of the bench's databases, and the whole RabbitMQ node (shared "
                  "with anything else on the machine). Gateway request timeout raised to 120 s so that a long import "
                  "is not cut off" f"; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
                  "cores (other work shares the machine)")


if __name__ == "__main__":
    main()
