"""The only code that reads and writes the portfolio projections, the inbox, the outbox and market data."""

import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from contracts.envelope import Message
from contracts.portfolios import CostBasisMethod, Side, TransactionKind, TransactionStatus

from portfolio.domain import Ledger, Trade, TradeOutcome
from portfolio.domain.cost_basis import CostBasisBook
from portfolio.domain.events import KINDS, SIDES, PortfolioState, TransactionState
from portfolio.domain.returns import ReturnIndex
from portfolio.domain.sell_holds import INSUFFICIENT_HOLDINGS, WAITING_FOR_BUYS, SellHold
from portfolio.domain.transfers import lots_from_json, lots_to_json
from portfolio.event_log import PendingAppend, Statement, append_events, appended

TX_COLUMNS = ("transaction_id", "portfolio_id", "sequence", "side", "amount_btc", "at", "fee_usd", "price_usd",
              "price_source", "price_hour", "status", "failure_reason", "failure_detail", "note", "price_request_id",
              "recorded_at", "updated_at", "hold_reason", "hold_detail", "kind", "fee_btc", "transfer_id",
              "counterpart_portfolio_id", "counterpart_transaction_id", "transfer_lots")
OUTCOME_COLUMNS = ("cost_usd", "proceeds_usd", "cost_basis_sold_usd", "realized_pnl_usd", "moved_cost_usd",
                   "moved_value_usd")
"""A trade's figures, set by the ledger; a trade no longer priced (edited to be priced again) has none."""


def transaction_state(row: asyncpg.Record) -> TransactionState:
    return TransactionState(
        row["transaction_id"], row["sequence"], Side(row["side"]), row["amount_btc"], row["at"], row["fee_usd"],
        row["price_usd"], row["price_source"], row["price_hour"], TransactionStatus(row["status"]),
        row["failure_reason"], row["failure_detail"], row["note"], row["price_request_id"], row["recorded_at"],
        row["updated_at"], row["hold_reason"], row["hold_detail"], TransactionKind(row["kind"]), row["fee_btc"],
        row["transfer_id"], row["counterpart_portfolio_id"], row["counterpart_transaction_id"],
        lots_from_json(json.loads(row["transfer_lots"]) if row["transfer_lots"] else None))


def transaction_row(portfolio_id: str, tx: TransactionState) -> tuple[Any, ...]:
    # side, status and kind are StrEnums: their members are the stored text
    return (tx.transaction_id, portfolio_id, tx.sequence, tx.side, tx.amount_btc, tx.at, tx.fee_usd,
            tx.price_usd, tx.price_source, tx.price_hour, tx.status, tx.failure_reason, tx.failure_detail,
            tx.note, tx.price_request_id, tx.recorded_at, tx.updated_at, tx.hold_reason, tx.hold_detail,
            tx.kind, tx.fee_btc, tx.transfer_id, tx.counterpart_portfolio_id, tx.counterpart_transaction_id,
            json.dumps(lots_to_json(tx.lots)) if tx.lots else None)


@dataclass(frozen=True, slots=True)
class Market:
    hour: int
    price_usd: Decimal
    as_of: datetime


# ------------------------------------------------------------------ portfolios and transactions


HEADER = ("SELECT p.portfolio_id, p.owner_id, p.name, p.method, p.goal_usd, p.created_at, p.updated_at, p.version, "
          "p.deleted, p.next_sequence, p.ledger::text AS ledger, p.metrics::text AS metrics, "
          "coalesce((p.metrics->>'pending_count')::int, 0) AS pending_count, "
          "coalesce((p.metrics->>'failed_count')::int, 0) AS failed_count, "
          "coalesce((p.metrics->>'transaction_count')::int, 0) AS transaction_count, p.held_pending, p.held_failed, p.repair_from")


@dataclass(slots=True)
class StoredFigures:
    """The ledger and metrics JSON as stored, read with the header so that the metrics need not read them again."""

    ledger: str
    metrics: str
    held_sells: int = 0
    """Sells the ledger leaves out; their holds change with the pending buys, so counts alone can't be patched."""
    _ledger: Ledger | None = None

    def read_ledger(self) -> Ledger:
        """The stored ledger, decoded once."""
        if self._ledger is None:
            self._ledger = Ledger.from_json(json.loads(self.ledger))
        return self._ledger


def state_of(row: asyncpg.Record, stored: dict[str, StoredFigures] | None) -> PortfolioState:
    """The portfolio's header; its stored ledger and metrics go to `stored`."""
    pending, failed = row["pending_count"], row["failed_count"]
    counts = {"pending": pending, "failed": failed, "priced": row["transaction_count"] - pending - failed}
    # the stored counts show held sells as pending or failed; the state counts them by their events (priced)
    held_pending, held_failed = row["held_pending"], row["held_failed"]
    counts["pending"] -= held_pending
    counts["failed"] -= held_failed
    counts["priced"] += held_pending + held_failed
    if stored is not None:
        stored[row["portfolio_id"]] = StoredFigures(row["ledger"], row["metrics"], held_pending + held_failed)
    return PortfolioState(row["portfolio_id"], row["owner_id"], row["name"], CostBasisMethod(row["method"]),
                          row["goal_usd"], row["created_at"], row["updated_at"], row["version"], row["deleted"],
                          row["next_sequence"], counts={k: v for k, v in counts.items() if v},
                          repair_from=row["repair_from"])


async def lock_portfolios(connection: asyncpg.Connection, portfolio_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """The headers of a batch's portfolios, locked in one statement in id order (the order a tick locks them in,
    so the two never deadlock), by id."""
    rows = await connection.fetch(f"{HEADER} FROM portfolios p WHERE p.portfolio_id = ANY($1::text[]) "
                                  "AND NOT p.deleted ORDER BY p.portfolio_id FOR UPDATE", sorted(set(portfolio_ids)))
    return {row["portfolio_id"]: row for row in rows}


async def load_state(connection: asyncpg.Connection, portfolio_id: str, owner_id: str | None,
                     transaction_ids: Iterable[str] = (), *, stored: dict[str, StoredFigures] | None = None,
                     locked: dict[str, asyncpg.Record] | None = None) -> PortfolioState | None:
    """The portfolio's header, locked, with only the named transactions loaded (None if missing, deleted or not
    the owner's). A header in `locked` (read by lock_portfolios, unchanged since) is taken from there, once."""
    row = locked.pop(portfolio_id, None) if locked else None
    if row is None:
        row = await connection.fetchrow(f"{HEADER} FROM portfolios p WHERE p.portfolio_id = $1 AND NOT p.deleted "
                                        "FOR UPDATE", portfolio_id)
    if row is None or (owner_id is not None and row["owner_id"] != owner_id):
        return None
    state = state_of(row, stored)
    await load_transactions(connection, state, transaction_ids)
    return state


async def load_transactions(connection: asyncpg.Connection, state: PortfolioState, transaction_ids: Iterable[str]
                            ) -> None:
    """Add the named transactions of the portfolio to its state (others are ignored)."""
    ids = list(transaction_ids)
    if ids:
        # by primary key alone: with portfolio_id in the filter a generic plan may scan the portfolio's rows
        for tx_row in await connection.fetch("SELECT * FROM transactions WHERE transaction_id = ANY($1::text[])", ids):
            if tx_row["portfolio_id"] == state.portfolio_id:
                state.transactions[tx_row["transaction_id"]] = transaction_state(tx_row)


async def load_state_of_transaction(connection: asyncpg.Connection, transaction_id: str,
                                    stored: dict[str, StoredFigures] | None = None, *, portfolio_id: str | None = None,
                                    locked: dict[str, asyncpg.Record] | None = None) -> PortfolioState | None:
    """The locked portfolio that holds the transaction, with that transaction loaded, in one query (its header
    from `locked` when the batch locked it: `portfolio_id` says which one the caller expects)."""
    header = locked.pop(portfolio_id, None) if locked and portfolio_id else None
    if header is not None:
        tx_row = await connection.fetchrow("SELECT * FROM transactions WHERE transaction_id = $1", transaction_id)
        if tx_row is not None and tx_row["portfolio_id"] == portfolio_id:
            state = state_of(header, stored)
            state.transactions[transaction_id] = transaction_state(tx_row)
            return state
    row = await connection.fetchrow(
        f"{HEADER}, t.* FROM transactions t JOIN portfolios p ON p.portfolio_id = t.portfolio_id "
        "WHERE t.transaction_id = $1 AND NOT p.deleted FOR UPDATE OF p", transaction_id)
    if row is None:
        return None
    state = state_of(row, stored)
    state.transactions[transaction_id] = transaction_state(row)
    return state


async def save_state(connection: asyncpg.Connection, state: PortfolioState, touched: Iterable[str], *,
                     header: bool = True) -> None:
    """Write the touched transactions (a touched id no longer in the state is deleted), and the header unless
    the metrics that follow will write it (save_metrics)."""
    if header:
        await save_header(connection, state)
    touched = list(touched)
    present = [state.transactions[t] for t in touched if t in state.transactions]
    gone = [t for t in touched if t not in state.transactions]
    if present:
        await connection.executemany(
            f"""INSERT INTO transactions ({", ".join(TX_COLUMNS)}) VALUES ({", ".join(f"${i + 1}"
                for i in range(len(TX_COLUMNS)))})
                ON CONFLICT (transaction_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in TX_COLUMNS[2:])},
                    {", ".join(f"{c} = CASE WHEN EXCLUDED.status = 'priced' THEN transactions.{c} END"
                               for c in OUTCOME_COLUMNS)}""",
            [transaction_row(state.portfolio_id, tx) for tx in present])
    if gone:
        await connection.execute("DELETE FROM transactions WHERE transaction_id = ANY($1::text[])", gone)
    if state.deleted:
        await connection.execute("DELETE FROM transactions WHERE portfolio_id = $1", state.portfolio_id)


async def save_header(connection: asyncpg.Connection, state: PortfolioState) -> None:
    await connection.execute(
        """INSERT INTO portfolios (portfolio_id, owner_id, name, method, goal_usd, version, created_at, updated_at,
                                   deleted, next_sequence, ledger, metrics)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, '{}'::jsonb)
           ON CONFLICT (portfolio_id) DO UPDATE SET name = $3, method = $4, goal_usd = $5, version = $6,
               updated_at = $8, deleted = $9, next_sequence = $10""",
        state.portfolio_id, state.owner_id, state.name, state.method.value, state.goal_usd, state.version,
        state.created_at, state.updated_at, state.deleted, state.next_sequence,
        json.dumps(Ledger.empty(state.method).to_json()))


async def holdings_timeline(connection: asyncpg.Connection, portfolio_id: str) -> list[Trade]:
    """Every pending or priced transaction as amounts on the timeline; failed ones, and sells that no buy covers,
    hold nothing."""
    rows = await connection.fetch(
        "SELECT transaction_id, side, amount_btc, at, fee_usd, sequence, kind FROM transactions "
        "WHERE portfolio_id = $1 AND status <> 'failed' AND hold_reason IS DISTINCT FROM $2",
        portfolio_id, INSUFFICIENT_HOLDINGS)
    return [Trade(r[0], SIDES[r[1]], r[2], r[3], r[4], None, r[5], KINDS[r[6]]) for r in rows]


async def holdings_around(connection: asyncpg.Connection, portfolio_id: str, key: tuple[datetime, int]
                          ) -> tuple[Decimal, list[tuple[Trade, Decimal]]]:
    """What a new sell at `key` is checked against (`rules.check_new_sell`): the BTC held just before it, and the
    later sells after which the holdings reached a new low, each with the holdings just after it. Only such a sell
    can be the first one a new sell uncovers, so a sell recorded anywhere reads a few rows, not the portfolio."""
    rows = await connection.fetch(
        """WITH counted AS (
               SELECT transaction_id, side, amount_btc, at, fee_usd, sequence, kind, (at, sequence) > ($3, $4) AS later,
                      CASE WHEN side = 'buy' THEN amount_btc ELSE -amount_btc END AS delta
               FROM transactions WHERE portfolio_id = $1 AND status <> 'failed' AND hold_reason IS DISTINCT FROM $2),
           before AS (SELECT coalesce(sum(delta), 0) AS held FROM counted WHERE NOT later),
           walked AS (
               SELECT counted.*, before.held + sum(delta) OVER (ORDER BY at, sequence ROWS UNBOUNDED PRECEDING) AS after
               FROM counted, before WHERE later),
           lows AS (
               SELECT *, min(after) OVER (ORDER BY at, sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                         AS lowest_before
               FROM walked)
           SELECT before.held, lows.transaction_id, lows.side, lows.amount_btc, lows.at, lows.fee_usd, lows.sequence,
                  lows.kind, lows.after
           FROM before LEFT JOIN lows ON lows.side = 'sell' AND (lows.lowest_before IS NULL OR lows.after < lows.lowest_before)
           ORDER BY lows.at, lows.sequence""",
        portfolio_id, INSUFFICIENT_HOLDINGS, *key)
    return rows[0][0], [(Trade(r[1], SIDES[r[2]], r[3], r[4], r[5], None, r[6], KINDS[r[7]]), r[8])
                        for r in rows if r[1] is not None]


async def transfer_side(connection: asyncpg.Connection | asyncpg.Pool, portfolio_id: str, transfer_id: str
                        ) -> asyncpg.Record | None:
    """This portfolio's side of a transfer: its transaction id, kind and the other side's ids."""
    return await connection.fetchrow(
        "SELECT transaction_id, kind, counterpart_portfolio_id, counterpart_transaction_id FROM transactions "
        "WHERE portfolio_id = $1 AND transfer_id = $2", portfolio_id, transfer_id)


async def arrivals_held(connection: asyncpg.Connection, source_ids: Sequence[str]) -> list[asyncpg.Record]:
    """For the given transfer-outs (other ids are skipped): their fee and destination, and what the destination's
    side holds now (its status, price, lots, reason and detail)."""
    return await connection.fetch(
        """SELECT s.transaction_id, s.fee_btc, s.price_usd AS source_price, s.price_hour AS source_hour,
                  s.status AS source_status, s.failure_reason AS source_reason, s.failure_detail AS source_detail,
                  s.counterpart_portfolio_id AS portfolio_id,
                  s.counterpart_transaction_id AS arrival_id, d.status, d.price_usd, d.price_hour,
                  d.transfer_lots::text AS lots, d.failure_reason, d.failure_detail, d.at, d.sequence
           FROM transactions s JOIN transactions d ON d.transaction_id = s.counterpart_transaction_id
           WHERE s.transaction_id = ANY($1::text[]) AND s.kind = 'transfer_out'""", list(source_ids))


async def pending_buys(connection: asyncpg.Connection, portfolio_id: str) -> list[Trade]:
    rows = await connection.fetch(
        "SELECT transaction_id, amount_btc, at, fee_usd, sequence FROM transactions "
        "WHERE portfolio_id = $1 AND status = 'pending' AND side = 'buy'", portfolio_id)
    return [Trade(r[0], Side.BUY, r[1], r[2], r[3], None, r[4]) for r in rows]


async def save_holds(connection: asyncpg.Connection, portfolio_id: str, holds: dict[str, SellHold]) -> None:
    """Set the holds of the held sells and clear every other one of the portfolio."""
    await connection.execute(
        """UPDATE transactions t SET hold_reason = h.reason, hold_detail = h.detail
           FROM (SELECT transaction_id FROM transactions WHERE portfolio_id = $1 AND hold_reason IS NOT NULL
                 UNION SELECT unnest($2::text[])) AS touched
           LEFT JOIN unnest($2::text[], $3::text[], $4::text[]) AS h(transaction_id, reason, detail)
                  USING (transaction_id)
           WHERE t.transaction_id = touched.transaction_id
             AND (t.hold_reason, t.hold_detail) IS DISTINCT FROM (h.reason, h.detail)""",
        portfolio_id, list(holds), [h.reason for h in holds.values()], [h.detail for h in holds.values()])


async def priced_trades(connection: asyncpg.Connection, portfolio_id: str,
                        after: tuple[datetime, int] | None = None) -> list[Trade]:
    """The priced trades in timeline order (only those later than `after`, when given)."""
    later = "" if after is None else " AND (at, sequence) > ($2, $3)"
    rows = await connection.fetch(
        f"SELECT {TRADE_COLUMNS} FROM transactions WHERE portfolio_id = $1 AND status = 'priced'{later} "
        "ORDER BY at, sequence", portfolio_id, *(after or ()))
    return [trade_of(r) for r in rows]


TRADE_COLUMNS = "transaction_id, side, amount_btc, at, fee_usd, price_usd, sequence, kind, fee_btc, transfer_lots::text"



def trade_of(row: asyncpg.Record) -> Trade:
    """A trade from the TRADE_COLUMNS of its row (a transfer with its kind, fee and the lots that arrived)."""
    lots = row["transfer_lots"]
    return Trade(row["transaction_id"], SIDES[row["side"]], row["amount_btc"], row["at"], row["fee_usd"],
                 row["price_usd"], row["sequence"], KINDS[row["kind"]], row["fee_btc"] or Decimal(0),
                 lots_from_json(json.loads(lots)) if lots else ())


async def moved_costs(connection: asyncpg.Connection | asyncpg.Pool, portfolio_id: str) -> dict[str, Decimal]:
    """The cost each counted transfer of the portfolio moved."""
    rows = await connection.fetch("SELECT transaction_id, moved_cost_usd FROM transactions WHERE portfolio_id = $1 "
                                  "AND transfer_id IS NOT NULL AND moved_cost_usd IS NOT NULL", portfolio_id)
    return {r[0]: r[1] for r in rows}


async def checkpoint_before(connection: asyncpg.Connection, portfolio_id: str, key: tuple[datetime, int]
                            ) -> Ledger | None:
    """The latest ledger checkpoint whose last trade is earlier than `key`."""
    ledger = await connection.fetchval(
        "SELECT ledger::text FROM ledger_checkpoints WHERE portfolio_id = $1 AND (last_at, last_sequence) < ($2, $3) "
        "ORDER BY trade_count DESC LIMIT 1", portfolio_id, *key)
    return None if ledger is None else Ledger.from_json(json.loads(ledger))


async def replace_checkpoints(connection: asyncpg.Connection, portfolio_id: str, after_count: int,
                              ledgers: Sequence[Ledger]) -> None:
    """Drop the checkpoints after the `after_count`-th trade (they are stale) and store `ledgers` instead."""
    await connection.execute("DELETE FROM ledger_checkpoints WHERE portfolio_id = $1 AND trade_count > $2",
                             portfolio_id, after_count)
    await store_checkpoints(connection, portfolio_id, ledgers)


async def store_checkpoints(connection: asyncpg.Connection, portfolio_id: str, ledgers: Sequence[Ledger]) -> None:
    if ledgers:
        await connection.executemany(
            "INSERT INTO ledger_checkpoints (portfolio_id, trade_count, last_at, last_sequence, ledger) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (portfolio_id, trade_count) DO UPDATE "
            "SET last_at = EXCLUDED.last_at, last_sequence = EXCLUDED.last_sequence, ledger = EXCLUDED.ledger",
            [checkpoint_record(portfolio_id, ledger) for ledger in ledgers])


async def load_ledger(connection: asyncpg.Connection, portfolio_id: str) -> Ledger:
    return Ledger.from_json(json.loads(await connection.fetchval(
        "SELECT ledger::text FROM portfolios WHERE portfolio_id = $1", portfolio_id)))


NO_FIGURES = (None,) * 6
"""The stored figures of a trade the ledger did not count (pending, failed or held)."""
NEW_ROWS = f"""INSERT INTO transactions ({", ".join((*TX_COLUMNS, *OUTCOME_COLUMNS))})
               SELECT {", ".join((*TX_COLUMNS, *OUTCOME_COLUMNS))}
               FROM json_populate_recordset(NULL::transactions, $1::json)"""
"""New transactions' rows with their figures (TX_COLUMNS, OUTCOME_COLUMNS), as a JSON array ($1)."""


def rows_json(rows: Sequence[tuple[Any, ...]]) -> str:
    """Whole transaction rows as NEW_ROWS reads them (money as decimal text, times in ISO 8601, lots as JSON)."""
    names = (*TX_COLUMNS, *OUTCOME_COLUMNS)
    lots = TX_COLUMNS.index("transfer_lots")
    return json.dumps([dict(zip(names, (*row[:lots], json.loads(row[lots]) if row[lots] else None, *row[lots + 1:]),
                                strict=True)) for row in rows], default=_json_value)


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def insert_transactions(connection: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    await connection.execute(NEW_ROWS, rows_json(rows))


def outcome_figures(outcome: TradeOutcome) -> tuple[Any, ...]:
    """A trade's stored figures, in OUTCOME_COLUMNS order."""
    return (outcome.cost_usd, outcome.proceeds_usd, outcome.cost_basis_sold_usd, outcome.realized_pnl_usd,
            outcome.moved_cost_usd, outcome.moved_value_usd)


OUTCOMES_UPDATE = """UPDATE transactions t SET cost_usd = o.cost, proceeds_usd = o.proceeds, cost_basis_sold_usd = o.sold,
               realized_pnl_usd = o.realized, moved_cost_usd = o.moved_cost, moved_value_usd = o.moved_value
           FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[],
                       $7::numeric[]) AS o(transaction_id, cost, proceeds, sold, realized, moved_cost, moved_value)
           WHERE t.transaction_id = o.transaction_id
             AND (t.cost_usd, t.proceeds_usd, t.cost_basis_sold_usd, t.realized_pnl_usd, t.moved_cost_usd,
                  t.moved_value_usd)
                 IS DISTINCT FROM (o.cost, o.proceeds, o.sold, o.realized, o.moved_cost, o.moved_value)"""
"""Each trade's figures, rewritten only where they changed (the outcomes as `outcome_arrays`, $1 to $7)."""


def outcome_arrays(outcomes: Sequence[TradeOutcome]) -> list[list[Any]]:
    """The outcomes as the seven arrays of OUTCOMES_UPDATE."""
    return [[o.transaction_id for o in outcomes], *map(list, zip(*map(outcome_figures, outcomes), strict=True))] \
        if outcomes else [[] for _ in range(7)]


async def save_outcomes(connection: asyncpg.Connection, outcomes: Sequence[TradeOutcome]) -> None:
    """Store each trade's figures; one statement, and only rows whose figures changed are rewritten."""
    if outcomes:
        await connection.execute(OUTCOMES_UPDATE, *outcome_arrays(outcomes))


async def save_outcomes_and_flows(connection: asyncpg.Connection, portfolio_id: str,
                                  outcomes: Sequence[TradeOutcome], new_rows: Sequence[tuple[Any, ...]] = ()
                                  ) -> list[tuple[datetime, Decimal]]:
    """insert_transactions (`new_rows`, with their figures), save_outcomes (the other trades' `outcomes`), and the
    portfolio's counted_cash_flows after both, in one statement (a statement does not see its own changes, so the
    flows of the rows it wrote are taken from what it wrote)."""
    if not outcomes and not new_rows:
        return (await counted_cash_flows(connection, [portfolio_id]))[portfolio_id]
    rows = await connection.fetch(
        f"""WITH saved AS ({OUTCOMES_UPDATE} RETURNING t.*),
                 inserted AS ({shifted(NEW_ROWS, 8)} RETURNING *),
                 current AS (SELECT * FROM saved WHERE portfolio_id = $8
                             UNION ALL
                             SELECT * FROM inserted WHERE portfolio_id = $8
                             UNION ALL
                             SELECT * FROM transactions
                             WHERE portfolio_id = $8 AND transaction_id NOT IN (SELECT transaction_id FROM saved))
            SELECT at, {CASH_FLOW} FROM current WHERE {COUNTED} ORDER BY at, sequence""",
        *outcome_arrays(outcomes), portfolio_id, rows_json(new_rows))
    return [(at, flow) for at, flow in rows]


PORTFOLIO_COLUMNS = ("portfolio_id", "owner_id", "name", "method", "goal_usd", "version", "created_at", "updated_at",
                     "deleted", "next_sequence", "ledger", "metrics", "holdings_btc", "cost_basis_usd", "invested_usd",
                     "realized_pnl_usd", "twr_index", "twr_value_after", "twr_holdings_after", "twr_started",
                     "tail_peak", "tail_max_drawdown", "held_pending", "held_failed", "repair_from")
CHECKPOINT_COLUMNS = ("portfolio_id", "trade_count", "last_at", "last_sequence", "ledger")


@dataclass(frozen=True, slots=True)
class Projection:
    """What the metrics of one portfolio store beside its header."""

    portfolio_id: str
    ledger: Ledger
    metrics: dict[str, Any]
    tail_peak: Decimal
    tail_max_drawdown: Decimal
    held_pending: int = 0
    held_failed: int = 0


def portfolio_record(state: PortfolioState, projection: Projection) -> tuple[Any, ...]:
    """A whole portfolio row in PORTFOLIO_COLUMNS order, for a bulk COPY (the replay)."""
    ledger, returns = projection.ledger, projection.ledger.returns
    return (state.portfolio_id, state.owner_id, state.name, state.method.value, state.goal_usd, state.version,
            state.created_at, state.updated_at, state.deleted, state.next_sequence, json.dumps(ledger.to_json()),
            json.dumps(projection.metrics), ledger.holdings_btc, ledger.cost_basis_usd, ledger.invested_usd,
            ledger.realized_pnl_usd, returns.index, returns.value_after, returns.holdings_after, returns.started,
            projection.tail_peak, projection.tail_max_drawdown, projection.held_pending, projection.held_failed,
            state.repair_from)


def checkpoint_record(portfolio_id: str, ledger: Ledger) -> tuple[Any, ...]:
    return (portfolio_id, ledger.trade_count, *ledger.last_key, json.dumps(ledger.to_json()))  # type: ignore[misc]


async def save_counts(connection: asyncpg.Connection, state: PortfolioState, metrics: dict[str, Any]) -> None:
    """The header and a metrics document in which only the transaction counts changed."""
    await connection.execute(
        "UPDATE portfolios SET metrics = $2::jsonb, name = $3, method = $4, goal_usd = $5, version = $6, "
        "updated_at = $7, next_sequence = $8 WHERE portfolio_id = $1", state.portfolio_id, json.dumps(metrics),
        state.name, state.method.value, state.goal_usd, state.version, state.updated_at, state.next_sequence)


METRICS_UPDATE = """UPDATE portfolios SET ledger = $2::jsonb,
               metrics = CASE WHEN $20 THEN $3::jsonb || jsonb_build_object('irr_pct', metrics->'irr_pct')
                              ELSE $3::jsonb END,
               holdings_btc = $4, cost_basis_usd = $5, invested_usd = $6, realized_pnl_usd = $7, twr_index = $8,
               twr_value_after = $9, twr_holdings_after = $10, twr_started = $11, tail_peak = $12,
               tail_max_drawdown = $13, irr_due = $20, name = $14, method = $15, goal_usd = $16, version = $17,
               updated_at = $18, next_sequence = $19, held_pending = $21, held_failed = $22, repair_from = $23
           WHERE portfolio_id = $1"""
"""The header, the ledger and the metrics of a portfolio (`metrics_arguments`, $1 to $23); with $20 (the IRR due),
the stored IRR is kept for the IRR pass."""


def metrics_arguments(state: PortfolioState, projection: Projection, irr_due: bool) -> tuple[Any, ...]:
    ledger, returns = projection.ledger, projection.ledger.returns
    return (state.portfolio_id, json.dumps(ledger.to_json()), json.dumps(projection.metrics), ledger.holdings_btc,
            ledger.cost_basis_usd, ledger.invested_usd, ledger.realized_pnl_usd, returns.index, returns.value_after,
            returns.holdings_after, returns.started, projection.tail_peak, projection.tail_max_drawdown, state.name,
            state.method.value, state.goal_usd, state.version, state.updated_at, state.next_sequence, irr_due,
            projection.held_pending, projection.held_failed, state.repair_from)


async def save_metrics(connection: asyncpg.Connection, state: PortfolioState, projection: Projection, *,
                       irr_due: bool) -> str | None:
    """The header, the ledger and the metrics of the portfolio, in one statement.

    With `irr_due`, the IRR is left to the IRR pass: the stored one is kept meanwhile, and returned."""
    return await connection.fetchval(  # type: ignore[no-any-return]
        f"{METRICS_UPDATE} RETURNING metrics->>'irr_pct'", *metrics_arguments(state, projection, irr_due))


def shifted(sql: str, by: int) -> str:
    """A statement's parameters renumbered ($1 → $(1 + by)), to run it as a CTE after others' parameters."""
    return re.sub(r"\$(\d+)", lambda number: f"${int(number.group(1)) + by}", sql)


async def save_figures(connection: asyncpg.Connection, state: PortfolioState, projection: Projection,
                       outcomes: Sequence[TradeOutcome], new_rows: Sequence[tuple[Any, ...]]) -> None:
    """insert_transactions (`new_rows`, with their figures), save_outcomes (the other trades') and save_metrics
    (its IRR computed) in one statement."""
    ctes = []
    arguments = list(metrics_arguments(state, projection, False))
    if new_rows:
        arguments.append(rows_json(new_rows))
        ctes.append(f"inserted AS ({shifted(NEW_ROWS, len(arguments) - 1)})")
    if outcomes:
        ctes.append(f"saved AS ({shifted(OUTCOMES_UPDATE, len(arguments))})")
        arguments.extend(outcome_arrays(outcomes))
    await connection.execute(f"WITH {', '.join(ctes)} {METRICS_UPDATE}" if ctes else METRICS_UPDATE, *arguments)


async def portfolio_row(connection: asyncpg.Connection | asyncpg.Pool, portfolio_id: str, owner_id: str
                        ) -> asyncpg.Record | None:
    return await connection.fetchrow(
        "SELECT portfolio_id, owner_id, name, method, goal_usd, version, created_at, updated_at, metrics::text "
        "FROM portfolios WHERE portfolio_id = $1 AND owner_id = $2 AND NOT deleted", portfolio_id, owner_id)


async def portfolio_rows(pool: asyncpg.Pool, owner_id: str, offset: int, limit: int
                         ) -> tuple[list[asyncpg.Record], int]:
    rows = await pool.fetch(
        "SELECT portfolio_id, owner_id, name, method, goal_usd, version, created_at, updated_at, metrics::text, "
        "count(*) OVER () AS total FROM portfolios WHERE owner_id = $1 AND NOT deleted "
        "ORDER BY created_at, portfolio_id OFFSET $2 LIMIT $3", owner_id, offset, limit)
    total = rows[0]["total"] if rows else int(await pool.fetchval(
        "SELECT count(*) FROM portfolios WHERE owner_id = $1 AND NOT deleted", owner_id))
    return rows, total


async def transaction_rows(pool: asyncpg.Pool | asyncpg.Connection, portfolio_id: str, offset: int, limit: int
                           ) -> tuple[list[asyncpg.Record], int]:
    rows = await pool.fetch(
        "SELECT *, count(*) OVER () AS total FROM transactions WHERE portfolio_id = $1 "
        "ORDER BY at DESC, sequence DESC OFFSET $2 LIMIT $3", portfolio_id, offset, limit)
    total = rows[0]["total"] if rows else int(await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE portfolio_id = $1", portfolio_id))
    return rows, total


async def transaction_record(pool: asyncpg.Pool | asyncpg.Connection, portfolio_id: str, transaction_id: str
                             ) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM transactions WHERE portfolio_id = $1 AND transaction_id = $2", portfolio_id, transaction_id)


async def all_transactions(pool: asyncpg.Pool, portfolio_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM transactions WHERE portfolio_id = $1 ORDER BY at, sequence", portfolio_id)


async def tax_inputs(pool: asyncpg.Pool, portfolio_id: str, until: datetime | None
                     ) -> tuple[list[Trade], list[datetime]]:
    """In one read, the priced trades before `until` in timeline order, and the times of the sells still pending
    (waiting for their price, or for the prices of earlier buys)."""
    rows = await pool.fetch(
        f"SELECT {TRADE_COLUMNS}, status, hold_reason "
        "FROM transactions WHERE portfolio_id = $1 AND status <> 'failed' "
        "AND at < coalesce($2::timestamptz, 'infinity') ORDER BY at, sequence", portfolio_id, until)
    priced = [trade_of(r) for r in rows if r["status"] == "priced"]
    pending = [r["at"] for r in rows if r["side"] == "sell" and r["kind"] == TransactionKind.TRADE
               and (r["status"] == "pending" or r["hold_reason"] == WAITING_FOR_BUYS)]
    return priced, pending


@dataclass(frozen=True, slots=True)
class IrrInputs:
    portfolio_id: str
    flows: list[tuple[datetime, Decimal]]
    current_value_usd: Decimal | None
    as_of: datetime | None


async def irr_inputs(connection: asyncpg.Connection, limit: int) -> list[IrrInputs]:
    """Up to `limit` portfolios whose IRR is due, locked, with their counted cash flows."""
    rows = await connection.fetch(
        """SELECT portfolio_id, metrics->>'current_value_usd' AS value, metrics->>'priced_until' AS as_of
           FROM portfolios WHERE irr_due AND NOT deleted ORDER BY portfolio_id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit)
    if not rows:
        return []
    flows = await counted_cash_flows(connection, [r[0] for r in rows])
    return [IrrInputs(r[0], flows[r[0]], None if r[1] is None else Decimal(r[1]),
                      None if r[2] is None else datetime.fromisoformat(r[2])) for r in rows]


async def counted_cash_flows(connection: asyncpg.Connection, portfolio_ids: Sequence[str]
                             ) -> dict[str, list[tuple[datetime, Decimal]]]:
    """The IRR cash flows of the trades the ledger counted, per portfolio, in timeline order."""
    flows: dict[str, list[tuple[datetime, Decimal]]] = {portfolio_id: [] for portfolio_id in portfolio_ids}
    for portfolio_id, at, flow in await connection.fetch(
            f"""SELECT portfolio_id, at, {CASH_FLOW} FROM transactions
                WHERE portfolio_id = ANY($1::text[]) AND {COUNTED} ORDER BY portfolio_id, at, sequence""", list(flows)):
        flows[portfolio_id].append((at, flow))
    return flows


CASH_FLOW = "coalesce(-cost_usd, proceeds_usd, CASE WHEN kind = 'transfer_in' THEN -moved_value_usd ELSE moved_value_usd END)"
"""A counted trade's IRR cash flow from its stored figures (TradeOutcome.cash_flow: a transfer moves its value out
of one portfolio and into the other)."""
COUNTED = ("status = 'priced' AND hold_reason IS NULL "
           "AND (cost_usd IS NOT NULL OR proceeds_usd IS NOT NULL OR moved_value_usd IS NOT NULL)")
"""A trade the ledger counted has its figures; a held sell, or a trade being priced again, has none that count."""


async def store_irrs(connection: asyncpg.Connection, irrs: dict[str, Decimal | None]) -> list[asyncpg.Record]:
    """Store each portfolio's IRR; returns the updated portfolios' owner, version and metrics."""
    return await connection.fetch(
        """UPDATE portfolios p SET metrics = jsonb_set(p.metrics, '{irr_pct}', coalesce(to_jsonb(i.irr), 'null')), irr_due = false
           FROM unnest($1::text[], $2::text[]) AS i(portfolio_id, irr) WHERE p.portfolio_id = i.portfolio_id
           RETURNING p.portfolio_id, p.owner_id, p.name, p.method, p.goal_usd, p.version, p.created_at,
                     p.updated_at, p.metrics::text""",
        list(irrs), [None if irr is None else str(irr) for irr in irrs.values()])


async def repairs_due(connection: asyncpg.Connection, limit: int) -> list[str]:
    rows = await connection.fetch(
        "SELECT portfolio_id FROM portfolios WHERE repair_from IS NOT NULL AND NOT deleted ORDER BY repair_from "
        "LIMIT $1", limit)
    return [r[0] for r in rows]


# ------------------------------------------------------------------ inbox and outbox


async def inbox_reply(connection: asyncpg.Connection, message_id: str) -> tuple[bool, bytes | None]:
    """(seen before, the reply given then)."""
    row = await connection.fetchrow("SELECT reply FROM inbox WHERE message_id = $1", message_id)
    return (False, None) if row is None else (True, None if row[0] is None else bytes(row[0]))


async def claim(connection: asyncpg.Connection, message_ids: Sequence[str]) -> set[str]:
    """Record messages as handled; returns the ids not seen before. A concurrent copy claiming the same id waits
    on its row until this transaction ends, then finds it taken."""
    rows = await connection.fetch(
        "INSERT INTO inbox (message_id) SELECT unnest($1::text[]) ON CONFLICT (message_id) DO NOTHING "
        "RETURNING message_id", list(message_ids))
    return {row[0] for row in rows}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    exchange: str
    routing_key: str
    message_id: str
    correlation_id: str | None
    body: bytes


async def write_batch(connection: asyncpg.Connection, exchange: str, messages: Sequence[Message],
                      replies: dict[str, bytes], released: Sequence[str], appends: Sequence[PendingAppend]
                      ) -> list[OutboxRow]:
    """What a batch wrote last, in one statement: the messages into the outbox, the commands' replies into the
    inbox, released claims out of it, and the events appended (event_log.append_events). Returns the outbox rows,
    for their writer to publish them once committed."""
    statement = Statement()
    append_events(statement, appends)
    if replies:
        statement.ctes.append(
            f"replied AS (UPDATE inbox SET reply = r.reply FROM unnest({statement.param(list(replies))}::text[], "
            f"{statement.param(list(replies.values()))}::bytea[]) AS r(message_id, reply) "
            "WHERE inbox.message_id = r.message_id)")
    if released:
        statement.ctes.append(
            f"forgotten AS (DELETE FROM inbox WHERE message_id = ANY({statement.param(list(released))}::text[]))")
    bodies = [m.to_json() for m in messages]
    if messages:
        statement.ctes.append(
            f"""queued AS (INSERT INTO outbox (exchange, routing_key, message_id, correlation_id, body)
                   SELECT {statement.param(exchange)}, m.routing_key, m.message_id, m.correlation_id, m.body
                   FROM unnest({statement.param([m.publish_key for m in messages])}::text[],
                               {statement.param([m.message_id for m in messages])}::text[],
                               {statement.param([m.correlation_id for m in messages])}::text[],
                               {statement.param(bodies)}::bytea[]) WITH ORDINALITY
                        AS m(routing_key, message_id, correlation_id, body, n)
                   ORDER BY m.n RETURNING id)""")
    if not statement.ctes:
        return []
    queued = "(SELECT array_agg(id ORDER BY id) FROM queued)" if messages else "NULL"
    with appended():
        ids = await connection.fetchval(f"WITH {', '.join(statement.ctes)} SELECT {queued}", *statement.args)
    # identities are drawn in the order the rows are inserted, which is the messages' order
    return [OutboxRow(id, exchange, m.publish_key, m.message_id, m.correlation_id, body)
            for id, m, body in zip(ids or [], messages, bodies, strict=True)]


async def take_outbox(connection: asyncpg.Connection, limit: int, older_than_seconds: float = 0
                      ) -> list[OutboxRow]:
    """Rows left for the relay, locked, oldest first: those written at least `older_than_seconds` ago (a younger
    one is being published by the writer that wrote it)."""
    rows = await connection.fetch(
        "SELECT id, exchange, routing_key, message_id, correlation_id, body FROM outbox "
        "WHERE created_at <= now() - make_interval(secs => $2) ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit, older_than_seconds)
    return [OutboxRow(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]


async def delete_outbox(connection: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> None:
    await connection.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


# ------------------------------------------------------------------ market data


async def market(connection: asyncpg.Connection | asyncpg.Pool) -> Market | None:
    row = await connection.fetchrow("SELECT hour, price_usd, as_of FROM market")
    return None if row is None else Market(row[0], row[1], row[2])


async def save_market(connection: asyncpg.Connection | asyncpg.Pool, hour: int, price: Decimal, as_of: datetime
                      ) -> bool:
    """Keep the newest price; False when `hour` is not newer than the stored one."""
    status = await connection.execute(
        """INSERT INTO market (id, hour, price_usd, as_of) VALUES (true, $1, $2, $3)
           ON CONFLICT (id) DO UPDATE SET hour = $1, price_usd = $2, as_of = $3 WHERE market.hour < $1""",
        hour, price, as_of)
    return status.endswith("1")


async def daily_opens(connection: asyncpg.Connection | asyncpg.Pool, start: datetime, end: datetime
                      ) -> list[tuple[datetime, Decimal | None]]:
    rows = await connection.fetch(
        "SELECT day, open_usd FROM daily_opens WHERE day > $1 AND day <= $2 ORDER BY day", start, end)
    return [(r[0], r[1]) for r in rows]


async def store_daily_opens(connection: asyncpg.Connection | asyncpg.Pool,
                            opens: Iterable[tuple[datetime, Decimal | None]]) -> None:
    await connection.executemany(
        "INSERT INTO daily_opens (day, open_usd) VALUES ($1, $2) ON CONFLICT (day) DO UPDATE SET open_usd = "
        "coalesce(EXCLUDED.open_usd, daily_opens.open_usd)", list(opens))


def utc_from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def lock_all_portfolios(connection: asyncpg.Connection) -> None:
    """A tick moves every portfolio: lock them first, in a statement of its own, so that what it then reads holds
    every write that committed before (a write of another copy that held a row is not overwritten with the row
    as it was before that write)."""
    await connection.fetchval("SELECT count(*) FROM (SELECT 1 FROM portfolios WHERE NOT deleted "
                              "ORDER BY portfolio_id FOR UPDATE) AS locked")  # one row back, not one a portfolio


@dataclass(frozen=True, slots=True)
class TickInputs:
    """What a price moves: the header, the ledger's state without its lots, and the counts users see."""

    state: PortfolioState
    ledger: Ledger
    last_at: datetime | None
    shown_counts: dict[str, int]


async def tick_inputs(connection: asyncpg.Connection, chunk: int) -> AsyncIterator[list[TickInputs]]:
    """Every portfolio, `chunk` at a time, in id order."""
    after = ""
    while True:
        rows = await connection.fetch(
            """SELECT portfolio_id, owner_id, name, method, goal_usd, created_at, updated_at, version, next_sequence,
                      holdings_btc, cost_basis_usd, invested_usd, realized_pnl_usd, twr_index, twr_value_after,
                      twr_holdings_after, twr_started, tail_peak, tail_max_drawdown,
                      ledger->'last_key'->>0 AS last_at,
                      coalesce((metrics->>'transaction_count')::int, 0) AS transaction_count,
                      coalesce((metrics->>'pending_count')::int, 0) AS pending_count,
                      coalesce((metrics->>'failed_count')::int, 0) AS failed_count
               FROM portfolios WHERE NOT deleted AND portfolio_id > $1 ORDER BY portfolio_id LIMIT $2""",
            after, chunk)
        if not rows:
            return
        yield [tick_inputs_of(row) for row in rows]
        after = rows[-1]["portfolio_id"]


def tick_inputs_of(row: asyncpg.Record) -> TickInputs:
    method = CostBasisMethod(row["method"])
    # the tail's peak and drawdown already hold the midnights since the last trade that earlier ticks folded
    returns = ReturnIndex(row["twr_index"], row["twr_value_after"], row["twr_holdings_after"], row["tail_peak"],
                          row["tail_max_drawdown"], row["twr_started"])
    ledger = Ledger(method, CostBasisBook(method, row["holdings_btc"], row["cost_basis_usd"]), row["invested_usd"],
                    row["realized_pnl_usd"], returns=returns)
    state = PortfolioState(row["portfolio_id"], row["owner_id"], row["name"], method, row["goal_usd"],
                           row["created_at"], row["updated_at"], row["version"], next_sequence=row["next_sequence"])
    pending, failed = row["pending_count"], row["failed_count"]
    counts = {"pending": pending, "failed": failed, "priced": row["transaction_count"] - pending - failed}
    last_at = datetime.fromisoformat(row["last_at"]) if row["last_at"] else None
    return TickInputs(state, ledger, last_at, counts)


async def store_tick_figures(connection: asyncpg.Connection, moved: Sequence[Projection]) -> None:
    """A chunk's new metrics and tails, in one statement; their IRR is current."""
    await connection.execute(
        """UPDATE portfolios p SET metrics = u.metrics::jsonb, tail_peak = u.peak, tail_max_drawdown = u.drawdown,
               irr_due = false
           FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[]) AS u(portfolio_id, metrics, peak, drawdown)
           WHERE p.portfolio_id = u.portfolio_id""",
        [p.portfolio_id for p in moved], [json.dumps(p.metrics) for p in moved], [p.tail_peak for p in moved],
        [p.tail_max_drawdown for p in moved])


async def mark_for_repair(connection: asyncpg.Connection, since: datetime) -> None:
    """Every portfolio missed the midnight prices after `since`: its ledger is recomputed once they are known."""
    await connection.execute(
        "UPDATE portfolios SET repair_from = least(coalesce(repair_from, $1), $1) WHERE NOT deleted AND twr_started",
        since)
