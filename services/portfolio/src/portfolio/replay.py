"""Rebuild every projection from the event log, or compare a rebuild with the live projections."""

import asyncio
import contextlib
import gc
import json
import multiprocessing
import queue
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from contracts.portfolios import TransactionStatus

from portfolio import repository as repo
from portfolio.db import create_pool
from portfolio.domain import Ledger, TradeOutcome, cash_flows, replay_ledger
from portfolio.domain.events import PortfolioState, apply_event, read_event
from portfolio.domain.sell_holds import sell_holds
from portfolio.event_log import Partition, count, partitions, read_all, read_streams
from portfolio.market_data import PriceSource
from portfolio.projection import project
from portfolio.service import PortfolioService

PROJECTION_TABLES = ("transactions", "portfolios", "ledger_checkpoints")
LOCK_ORDER = ("portfolios", "transactions", "ledger_checkpoints")
"""The order a write locks them in (its portfolio's row first); a replay's swap takes them in the same order."""
STAGING = "replay_"
"""A parallel replay's workers fill `replay_<table>` copies; one transaction then moves them into the projections."""


class ReplayRaced(Exception):
    """Events were appended while a parallel replay ran, so its rebuild is already behind the log."""


@dataclass
class RebuiltPortfolio:
    state: PortfolioState
    projection: repo.Projection
    outcomes: dict[str, TradeOutcome]
    checkpoints: list[Ledger]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.projection.metrics


async def fold_log(pool: asyncpg.Pool, portfolio_id: str | None, advance: Callable[[int], None],
                   part: Partition | None = None) -> dict[str, PortfolioState]:
    states: dict[str, PortfolioState] = {}
    stream_id, key, state = None, "", None
    async for batch in _stored_events(pool, portfolio_id, part):
        for stream, kind, payload, recorded_at, _ in batch:
            if stream != stream_id:  # a stream's events mostly come one after another
                stream_id, key = stream, stream.removeprefix("portfolio-")
                state = states.get(key)
            event = read_event(kind, orjson.loads(payload) if isinstance(payload, str) else payload)
            state = states[key] = apply_event(state, event, recorded_at)
        advance(len(batch))
    return states


async def _stored_events(pool: asyncpg.Pool, portfolio_id: str | None, part: Partition | None
                         ) -> AsyncIterator[Sequence[tuple[str, str, str | dict[str, Any], datetime, int]]]:
    """Batches of (stream_id, type, payload, recorded_at, version): a worker's partition as stored (the payload as
    JSON text), else the whole log or one stream."""
    if part is not None:
        async for rows in read_streams(pool, part):
            yield rows  # records with these columns
        return
    stream = f"portfolio-{portfolio_id}" if portfolio_id else None
    async for batch in read_all(pool, stream_id=stream, metadata=False):
        yield [(e.stream_id, e.type, e.payload, e.recorded_at, e.version) for e in batch]


async def rebuild(service: PortfolioService, portfolio_id: str | None = None,
                  advance: Callable[[int], None] = lambda _: None, part: Partition | None = None
                  ) -> dict[str, RebuiltPortfolio]:
    states = await fold_log(service.pool, portfolio_id, advance, part)
    market = await repo.market(service.pool)
    await service.opens.load(service.pool)
    rebuilt = {}
    for key, state in states.items():
        trades = [tx.trade() for tx in state.transactions.values() if tx.status == TransactionStatus.PRICED]
        if trades and market is not None:
            first = min(trade.at for trade in trades)
            if not await service.opens.ensure(service.pool, first, max(market.as_of, *(t.at for t in trades))):
                state.repair_from = first  # the running service recomputes it once the midnights are known
        checkpoints: list[Ledger] = []
        ledger, outcomes = replay_ledger(state.method, trades, service.opens.between, checkpoints=checkpoints)
        times = {trade.transaction_id: trade.at for trade in trades}
        flows = cash_flows([(times[o.transaction_id], o) for o in outcomes])
        pending_buys = [tx.trade() for tx in state.transactions.values() if tx.status == TransactionStatus.PENDING]
        holds = sell_holds(ledger.uncovered, pending_buys)
        for tx in state.transactions.values():
            hold = holds.get(tx.transaction_id)
            tx.hold_reason, tx.hold_detail = (hold.reason, hold.detail) if hold else (None, None)
        projection = project(service.opens, ledger, state, holds, market, flows)
        rebuilt[key] = RebuiltPortfolio(state, projection, {o.transaction_id: o for o in outcomes}, checkpoints)
    return rebuilt


def projection_rows(rebuilt: dict[str, RebuiltPortfolio]) -> dict[str, tuple[Sequence[str], list[tuple[Any, ...]]]]:
    """The rebuild as COPY-ready rows per projection table: table → (columns, rows)."""
    transactions = []
    for item in rebuilt.values():
        if item.state.deleted:
            continue
        portfolio_id, outcomes = item.state.portfolio_id, item.outcomes
        for tx in item.state.transactions.values():
            outcome = outcomes.get(tx.transaction_id)
            transactions.append(repo.transaction_row(portfolio_id, tx)
                                + (repo.outcome_figures(outcome) if outcome is not None else repo.NO_FIGURES))
    return {
        "portfolios": (repo.PORTFOLIO_COLUMNS,
                       [repo.portfolio_record(item.state, item.projection) for item in rebuilt.values()]),
        "ledger_checkpoints": (repo.CHECKPOINT_COLUMNS,
                               [repo.checkpoint_record(item.state.portfolio_id, ledger)
                                for item in rebuilt.values() for ledger in item.checkpoints]),
        "transactions": ((*repo.TX_COLUMNS, *repo.OUTCOME_COLUMNS), transactions)}


async def write(pool: asyncpg.Pool, rebuilt: dict[str, RebuiltPortfolio], portfolio_id: str | None) -> None:
    """Replace the projections (all, or one portfolio's) with the rebuild, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        if portfolio_id:
            for table in PROJECTION_TABLES:
                await connection.execute(f"DELETE FROM {table} WHERE portfolio_id = $1", portfolio_id)
        else:
            await connection.execute(f"TRUNCATE {', '.join(PROJECTION_TABLES)}")
        for table, (columns, rows) in projection_rows(rebuilt).items():
            await connection.copy_records_to_table(table, columns=columns, records=rows)


async def replay_in_parallel(pool: asyncpg.Pool, dsn: str, workers: int,
                             advance: Callable[[int], None] = lambda _: None) -> int:
    """Rebuild every projection with `workers` processes, each folding a run of whole streams and COPYing it into
    staging copies of the projection tables; their indexes are built, then one transaction swaps the copies in
    (refused if the log grew meanwhile). Returns the number of portfolios rebuilt."""
    parts = await partitions(pool, workers * PARTS_PER_WORKER)
    tables = {table: await _table_keys(pool, table) for table in PROJECTION_TABLES}
    try:
        async with pool.acquire() as connection:
            for table in PROJECTION_TABLES:
                await connection.execute(f"DROP TABLE IF EXISTS {STAGING}{table}")
                await connection.execute(
                    f"CREATE TABLE {STAGING}{table} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES)")
        rebuilt = await _run_workers(dsn, parts, workers, advance)
        await asyncio.gather(*(_build(pool, statement) for keys in tables.values() for statement in keys.staged))
        until = parts[-1].until if parts else 0
        for attempt in range(SWAP_ATTEMPTS):
            try:
                await _swap_in(pool, tables, until)
                break
            except asyncpg.DeadlockDetectedError:  # a write held a lock the swap needs; it has rolled back
                if attempt == SWAP_ATTEMPTS - 1:
                    raise
        return rebuilt
    finally:
        async with pool.acquire() as connection:
            for table in PROJECTION_TABLES:
                await connection.execute(f"DROP TABLE IF EXISTS {STAGING}{table}")


SWAP_ATTEMPTS = 3


async def _swap_in(pool: asyncpg.Pool, tables: dict[str, "_TableKeys"], until: int) -> None:
    """One transaction: lock the projections (portfolios first, the order a write takes them in), refuse if the log
    grew past `until`, and put the staging copies in the tables' place under their names."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(f"LOCK TABLE {', '.join(sorted(PROJECTION_TABLES, key=LOCK_ORDER.index))} "
                                 "IN ACCESS EXCLUSIVE MODE")
        if await connection.fetchval("SELECT last_position FROM event_position FOR UPDATE") != until:
            raise ReplayRaced("Events were recorded while the replay ran; stop the portfolio service and replay "
                              "again.")
        for table, keys in tables.items():
            await connection.execute(f"DROP TABLE {table}")
            await connection.execute(f"ALTER TABLE {STAGING}{table} RENAME TO {table}")
            for statement in keys.renames:
                await connection.execute(statement)


@dataclass(frozen=True)
class _TableKeys:
    staged: list[str]
    """Statements that give the staging copy the live table's primary key, unique constraints and indexes."""
    renames: list[str]
    """Statements that give them the live names once the copy has taken the table's place."""


async def _table_keys(pool: asyncpg.Pool, table: str) -> _TableKeys:
    """Read the live table's keys and indexes from the catalog, so that the swap keeps whatever the migrations made."""
    staged, renames = [], []
    for row in await pool.fetch("SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
                                "WHERE conrelid = $1::regclass AND contype IN ('p', 'u')", table):
        staged.append(f"ALTER TABLE {STAGING}{table} ADD CONSTRAINT {STAGING}{row['conname']} {row['definition']}")
        renames.append(f"ALTER TABLE {table} RENAME CONSTRAINT {STAGING}{row['conname']} TO {row['conname']}")
    for row in await pool.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)", table):
        head, _, tail = row["definition"].partition(" ON ")
        staged.append(f"{head.replace(row['name'], STAGING + row['name'], 1)} ON "
                      f"{tail.replace(f'.{table} ', f'.{STAGING}{table} ', 1)}")
        renames.append(f"ALTER INDEX {STAGING}{row['name']} RENAME TO {row['name']}")
    return _TableKeys(staged, renames)


async def _build(pool: asyncpg.Pool, statement: str) -> None:
    async with pool.acquire() as connection:
        await connection.execute(statement)


PARTS_PER_WORKER = 4
"""The log is cut into this many runs of streams per worker, which take the next run when they finish one: the
workers end together however unevenly the sample split the log (one run each would leave a core idle meanwhile),
and one worker's COPY overlaps the others' folds."""


async def _run_workers(dsn: str, parts: list[Partition], workers: int, advance: Callable[[int], None]) -> int:
    if not parts:
        return 0
    # forked, the workers start with the modules this process has imported (spawned, each imports them again)
    context = multiprocessing.get_context("fork")
    progress = context.Queue()
    with ProcessPoolExecutor(min(workers, len(parts)), mp_context=context, initializer=_start_worker,
                             initargs=(progress,)) as executor:
        loop = asyncio.get_running_loop()
        done = asyncio.gather(*(loop.run_in_executor(executor, _replay_part, dsn, part) for part in parts))
        while not done.done():
            await asyncio.wait([done], timeout=0.1)
            with contextlib.suppress(queue.Empty):
                while True:
                    advance(progress.get_nowait())
        return sum(await done)


_progress: "multiprocessing.Queue[int] | None" = None


def _start_worker(progress: "multiprocessing.Queue[int]") -> None:
    global _progress
    _progress = progress


def _replay_part(dsn: str, part: Partition) -> int:
    with without_cycle_collection():
        return asyncio.run(_replay_part_into_staging(dsn, part))


@contextlib.contextmanager
def without_cycle_collection() -> Iterator[None]:
    """A replay allocates millions of objects that live until it ends, and the cycle collector would walk them again
    and again (a third of a worker's CPU); a replay makes no cycles worth collecting, so it is paused."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _replay_part_into_staging(dsn: str, part: Partition) -> int:
    pool = await create_pool(dsn)
    try:
        service = PortfolioService(pool, PriceSource(None))
        rebuilt = await rebuild(service, advance=_progress.put if _progress else lambda _: None, part=part)
        async with pool.acquire() as connection:
            for table, (columns, rows) in projection_rows(rebuilt).items():
                await connection.copy_records_to_table(STAGING + table, columns=columns, records=rows)
        return len(rebuilt)
    finally:
        await pool.close()


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, str):
        try:
            return Decimal(value).normalize()
        except ArithmeticError:
            return value
    return value


async def differences(pool: asyncpg.Pool, rebuilt: dict[str, RebuiltPortfolio], portfolio_id: str | None
                      ) -> list[str]:
    """Every field where the live projections differ from the rebuild, as readable lines."""
    found: list[str] = []
    live = {r["portfolio_id"]: r for r in await pool.fetch(
        "SELECT portfolio_id, owner_id, name, method, goal_usd, version, created_at, updated_at, deleted, "
        "irr_due, metrics::text FROM portfolios" + (" WHERE portfolio_id = $1" if portfolio_id else ""),
        *([portfolio_id] if portfolio_id else []))}
    for key in sorted(set(live) | set(rebuilt)):
        if key not in live or key not in rebuilt:
            found.append(f"portfolio {key}: {'missing from the live projection' if key not in live else 'not in the log'}")
            continue
        row, item = live[key], rebuilt[key]
        state = item.state
        expected = {"owner_id": state.owner_id, "name": state.name, "method": state.method.value,
                    "goal_usd": state.goal_usd, "version": state.version, "created_at": state.created_at,
                    "updated_at": state.updated_at, "deleted": state.deleted}
        for field, value in expected.items():
            if _normal(row[field]) != _normal(value):
                found.append(f"portfolio {key} {field}: live {row[field]!r}, rebuilt {value!r}")
        if state.deleted:
            continue
        live_metrics = json.loads(row["metrics"])
        for field, value in item.metrics.items():
            if field == "irr_pct" and row["irr_due"]:
                continue  # the IRR pass has not run since the last change; it follows within a second
            if _normal(live_metrics.get(field)) != _normal(value):
                found.append(f"portfolio {key} metrics.{field}: live {live_metrics.get(field)!r}, rebuilt {value!r}")
        live_txs = {r["transaction_id"]: r for r in await pool.fetch(
            "SELECT * FROM transactions WHERE portfolio_id = $1", key)}
        for tx_id in sorted(set(live_txs) | set(state.transactions)):
            if tx_id not in live_txs or tx_id not in state.transactions:
                found.append(f"transaction {tx_id}: only in the {'rebuild' if tx_id not in live_txs else 'live projection'}")
                continue
            outcome = item.outcomes.get(tx_id, TradeOutcome(tx_id))
            want = dict(zip(repo.TX_COLUMNS, repo.transaction_row(key, state.transactions[tx_id]), strict=True))
            want.update(zip(repo.OUTCOME_COLUMNS, repo.outcome_figures(outcome), strict=True))
            for field, value in want.items():
                have = live_txs[tx_id][field]
                if _normal(have) != _normal(value) and not (isinstance(have, datetime) and have == value):
                    found.append(f"transaction {tx_id} {field}: live {have!r}, rebuilt {value!r}")
    return found


async def event_count(pool: asyncpg.Pool) -> int:
    return await count(pool)
