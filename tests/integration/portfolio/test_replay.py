"""Replay rebuilds the projections from the log; --check finds any difference from the live projections."""

import os
import subprocess
import sys
from decimal import Decimal

from contracts.portfolios import (
    CreatePortfolio,
    DeleteTransaction,
    EditTransaction,
    GetPortfolio,
    ListTransactions,
    RecordTransaction,
    SetCostBasisMethod,
)

OWNER = "owner-replay"


def replay_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTFOLIO_DATABASE_URL": settings.database_url}
    return subprocess.run([sys.executable, "-m", "portfolio.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


async def test_replay_ends_with_the_same_metrics_and_check_finds_tampering(commands, portfolio_settings,
                                                                           portfolio_app) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="Replayed")))["portfolio_id"]
    ids = []
    for day, (side, amount, price) in enumerate([("buy", "1", "40000"), ("buy", "0.5", "50000"),
                                                 ("sell", "0.7", "60000"), ("buy", "0.2", "30000")], start=1):
        tx = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side,
                                                 amount_btc=Decimal(amount), at=f"2024-02-0{day}T12:00:00Z",
                                                 price_usd=Decimal(price), fee_usd=Decimal("3")))
        ids.append(tx["transaction_id"])
    await commands.ok(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=ids[1],
                                      fee_usd=Decimal("7.5")))
    await commands.ok(DeleteTransaction(owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=ids[3]))
    await commands.ok(SetCostBasisMethod(owner_id=OWNER, portfolio_id=portfolio_id, cost_basis_method="hifo"))
    before = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))

    check = replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "equal the rebuild" in check.stderr

    pool = portfolio_app.service.pool
    await pool.execute("UPDATE transactions SET fee_usd = 99 WHERE transaction_id = $1", ids[0])
    await pool.execute("UPDATE portfolios SET metrics = jsonb_set(metrics, '{invested_usd}', '\"1\"') "
                       "WHERE portfolio_id = $1", portfolio_id)
    tampered = replay_cli(portfolio_settings, "replay", "--check", "--portfolio", portfolio_id)
    assert tampered.returncode == 1
    assert f"transaction {ids[0]} fee_usd" in tampered.stderr
    assert "metrics.invested_usd" in tampered.stderr

    rebuilt = replay_cli(portfolio_settings, "replay")
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert {k: v for k, v in after["metrics"].items() if k != "irr_pct"} == \
        {k: v for k, v in before["metrics"].items() if k != "irr_pct"}
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    assert sorted(i["transaction_id"] for i in page["items"]) == sorted(ids[:3])
    assert replay_cli(portfolio_settings, "replay", "--check").returncode == 0
