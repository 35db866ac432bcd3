"""Replay rebuilds the projections from the log; --check finds any difference from the live projections."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from contracts.portfolios import (
    CostBasisMethod,
    CreatePortfolio,
    DeleteTransaction,
    EditTransaction,
    GetPortfolio,
    ImportTransactions,
    ListTransactions,
    RecordTransaction,
    SetCostBasisMethod,
)
from portfolio import repository as repo
from portfolio.domain import CHECKPOINT_EVERY, Ledger, replay_ledger
from portfolio.event_log import partitions, read_streams
from portfolio.replay import ReplayRaced, replay_in_parallel

OWNER = "owner-replay"


async def replay_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a thread, so that the service running in this test's event loop goes on meanwhile (a replay waits
    for the locks of a write in flight, which would otherwise wait for this loop)."""
    env = {**os.environ, "PORTFOLIO_DATABASE_URL": settings.database_url}
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "portfolio.cli", *args],
                                   capture_output=True, text=True, env=env, timeout=120)


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

    check = await replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "equal the rebuild" in check.stderr

    pool = portfolio_app.service.pool
    await pool.execute("UPDATE transactions SET fee_usd = 99 WHERE transaction_id = $1", ids[0])
    await pool.execute("UPDATE portfolios SET metrics = jsonb_set(metrics, '{invested_usd}', '\"1\"') "
                       "WHERE portfolio_id = $1", portfolio_id)
    tampered = await replay_cli(portfolio_settings, "replay", "--check", "--portfolio", portfolio_id)
    assert tampered.returncode == 1
    assert f"transaction {ids[0]} fee_usd" in tampered.stderr
    assert "metrics.invested_usd" in tampered.stderr

    rebuilt = await replay_cli(portfolio_settings, "replay")
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert {k: v for k, v in after["metrics"].items() if k != "irr_pct"} == \
        {k: v for k, v in before["metrics"].items() if k != "irr_pct"}
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    assert sorted(i["transaction_id"] for i in page["items"]) == sorted(ids[:3])
    assert (await replay_cli(portfolio_settings, "replay", "--check")).returncode == 0


def typed_trades_csv(count: int) -> str:
    """Every third trade sells half a buy; a trade every 30 minutes from 2024-03-01."""
    lines = ["side,amount_btc,at,fee_usd,price_usd,note"]
    for n in range(count):
        side = "sell" if n % 3 == 2 else "buy"
        at = (datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=30 * n)).isoformat()
        lines.append(f"{side},{'0.01' if side == 'sell' else '0.02'},{at},1,{40000 + 7 * n},")
    return "\n".join(lines) + "\n"


async def test_back_dated_changes_resume_from_a_checkpoint_and_equal_a_full_replay(commands, portfolio_settings,
                                                                                   portfolio_app) -> None:
    """600 priced trades (2 checkpoints under FIFO); a back-dated buy, an edit that moves a trade earlier and a
    delete each recompute from the checkpoint before them, and the result is exactly the full replay's."""
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="Long", cost_basis_method="fifo")))[
        "portfolio_id"]
    report = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id,
                                                  csv_text=typed_trades_csv(600)))
    assert report["imported"] == 600
    pool = portfolio_app.service.pool
    checkpoints = await pool.fetch("SELECT trade_count, last_at, last_sequence FROM ledger_checkpoints "
                                   "WHERE portfolio_id = $1 ORDER BY trade_count", portfolio_id)
    assert [row["trade_count"] for row in checkpoints] == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]

    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id, limit=600))
    by_time = sorted(page["items"], key=lambda item: item["at"])
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                        amount_btc=Decimal("0.3"), at=by_time[550]["at"],
                                        price_usd=Decimal("41000")))
    await commands.ok(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                      transaction_id=by_time[590]["transaction_id"], at=by_time[400]["at"]))
    await commands.ok(DeleteTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                        transaction_id=by_time[300]["transaction_id"]))
    # the delete at trade ~300 dropped the second checkpoint and wrote it again from the first one onward
    kept = await pool.fetch("SELECT trade_count, ledger::text FROM ledger_checkpoints WHERE portfolio_id = $1 "
                            "ORDER BY trade_count", portfolio_id)
    assert [row["trade_count"] for row in kept] == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]

    check = await replay_cli(portfolio_settings, "replay", "--check", "--portfolio", portfolio_id)
    assert check.returncode == 0, check.stdout + check.stderr
    async with pool.acquire() as connection:
        trades = await repo.priced_trades(connection, portfolio_id)
    rebuilt_checkpoints: list[Ledger] = []
    replay_ledger(CostBasisMethod.FIFO, trades, portfolio_app.service.opens.between, checkpoints=rebuilt_checkpoints)
    assert [json.loads(row["ledger"]) for row in kept] == [c.to_json() for c in rebuilt_checkpoints]


async def catalog(pool) -> list[tuple]:
    """Names and definitions of the projection tables' indexes and constraints, and whether each table is logged."""
    return [tuple(row) for row in await pool.fetch(
        "SELECT c.relname, c.relpersistence, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
        "FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid "
        "WHERE c.relname IN ('transactions', 'portfolios', 'ledger_checkpoints') ORDER BY 1, 3")]


async def test_a_parallel_replay_equals_the_live_projections_and_keeps_every_index(commands, portfolio_settings,
                                                                                 portfolio_app) -> None:
    """Two worker processes each fold a run of streams into staging tables, which one transaction swaps in: the
    result equals the live projections, and the tables keep their indexes, keys and names."""
    ids = []
    for n, method in enumerate(("fifo", "average", "lifo", "hifo", "fifo")):
        portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name=f"P{n}", cost_basis_method=method)))[
            "portfolio_id"]
        await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id,
                                             csv_text=typed_trades_csv(40 + 100 * n)))
        ids.append(portfolio_id)
    pool = portfolio_app.service.pool
    before = {pid: await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=pid)) for pid in ids}
    indexes = await catalog(pool)
    await pool.execute("UPDATE portfolios SET metrics = jsonb_set(metrics, '{invested_usd}', '\"1\"')")

    replayed = await replay_cli(portfolio_settings, "replay", "--workers", "2")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "with 2 processes" in replayed.stderr
    assert await catalog(pool) == indexes
    assert not await pool.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE 'replay\\_%'")
    check = await replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    for pid in ids:
        after = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=pid))
        assert {k: v for k, v in after["metrics"].items() if k != "irr_pct"} == \
            {k: v for k, v in before[pid]["metrics"].items() if k != "irr_pct"}
        assert after["version"] == before[pid]["version"]


async def test_a_parallel_replay_that_events_overtook_is_refused_and_changes_nothing(commands, portfolio_settings,
                                                                                   portfolio_app) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="Raced")))["portfolio_id"]
    await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=typed_trades_csv(30)))
    pool = portfolio_app.service.pool
    written: list[asyncio.Task] = []

    def record_a_trade_meanwhile(_: int) -> None:
        if not written:
            written.append(asyncio.ensure_future(commands.ok(RecordTransaction(
                owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal("0.1"),
                at="2024-05-01T00:00:00Z", price_usd=Decimal("60000")))))

    with pytest.raises(ReplayRaced):
        await replay_in_parallel(pool, portfolio_settings.asyncpg_dsn, 2, record_a_trade_meanwhile)
    await written[0]
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id, limit=100))
    assert page["total"] == 31  # the live projections still hold the trade recorded during the replay
    assert not await pool.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE 'replay\\_%'")
    check = await replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


async def test_the_partitions_of_a_parallel_replay_hold_every_event_once_and_each_stream_whole(commands,
                                                                                               portfolio_app) -> None:
    """The split points come from a sample of the log, so only the balance may vary: every event is in exactly one
    partition, and a stream never straddles two."""
    for n in range(12):
        portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name=f"Split {n}")))["portfolio_id"]
        await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id,
                                             csv_text=typed_trades_csv(5 + 7 * n)))
    pool = portfolio_app.service.pool
    everything = {(r["stream_id"], r["version"]) for r in await pool.fetch("SELECT stream_id, version FROM events")}
    for workers in (1, 2, 3, 5):
        parts = await partitions(pool, workers)
        assert 1 <= len(parts) <= workers
        seen: list[tuple[str, int]] = []
        streams_per_part = []
        for part in parts:
            events = [(row["stream_id"], row["version"])
                      async for batch in read_streams(pool, part, batch=50) for row in batch]
            seen.extend(events)
            streams_per_part.append({stream for stream, _ in events})
        assert sorted(seen) == sorted(everything)
        assert sum(len(streams) for streams in streams_per_part) == len({s for s, _ in everything})
