"""Scale-out: two copies of the portfolio and price services share the queues; nothing is lost or applied twice."""

import asyncio

import httpx

from tests.faults.test_faults import new_portfolio, publish_all, report, settle, trade


def handled(metrics_text: str, queue: str) -> float:
    """Sum of portfolio_messages_total over every outcome for one queue (Prometheus text format)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith("portfolio_messages_total{") and f'queue="{queue}"' in line)


async def test_two_copies_of_portfolio_and_price_share_the_work(system, commands, portfolio_db) -> None:
    launcher = system.launcher
    extra = [await asyncio.to_thread(launcher.start, name, 60, 2) for name in ("portfolio", "price")]
    try:
        owner, sent = "fault-scale", 1000
        portfolio_ids = [await new_portfolio(commands, owner) for _ in range(4)]
        messages = [trade(owner, portfolio_ids[n % 4], n) for n in range(sent)]
        started = asyncio.get_running_loop().time()
        await publish_all(system.rabbit_url, messages)
        totals = {"total": 0, "distinct_notes": 0, "pending": 0, "priced": 0}
        for portfolio_id in portfolio_ids:
            counts = await settle(portfolio_db, portfolio_id, sent // 4)
            totals = {k: totals[k] + counts[k] for k in totals}
        async with httpx.AsyncClient() as client:
            shares = [handled((await client.get(f"{launcher.services[key].url}/metrics")).text, "portfolio.commands")
                      for key in ("portfolio", "portfolio-2")]
        report("2 copies", sent, totals, asyncio.get_running_loop().time() - started, commands_per_copy=shares)
        assert all(share > 0 for share in shares), "both copies consumed commands"
    finally:
        for service in extra:
            service.stop()
