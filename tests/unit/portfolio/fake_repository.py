"""An in-memory repository for the portfolio service's write path, so handlers run in unit tests without Postgres.

Each function mirrors the one of the same name in `portfolio.repository` (same arguments; the connection is
ignored) for the trade path: portfolios, trades, checkpoints, figures, holds and the latest price. Transfers and
price ticks are not covered: their functions are absent, so a test that reaches them fails loudly.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from contracts.portfolios import Side, TransactionKind
from portfolio import repository as repo
from portfolio.domain import Ledger, Trade, TradeOutcome
from portfolio.domain.events import PortfolioState
from portfolio.domain.sell_holds import INSUFFICIENT_HOLDINGS, SellHold


class FakeRepository:
    def __init__(self, market: repo.Market | None = None) -> None:
        self.portfolios: dict[str, dict[str, Any]] = {}
        self.transactions: dict[str, dict[str, Any]] = {}
        self.checkpoints: dict[str, dict[int, tuple[datetime, int, str]]] = {}
        self.latest = market

    # ------------------------------------------------------------------ portfolios
    def _header(self, portfolio_id: str) -> dict[str, Any] | None:
        row = self.portfolios.get(portfolio_id)
        if row is None or row["deleted"]:
            return None
        metrics = json.loads(row["metrics"])
        return {**row, "pending_count": metrics.get("pending_count", 0), "failed_count": metrics.get("failed_count", 0),
                "transaction_count": metrics.get("transaction_count", 0)}

    async def lock_portfolios(self, connection: Any, portfolio_ids: Sequence[str]) -> dict[str, Any]:
        return {}

    async def market(self, connection: Any) -> repo.Market | None:
        return self.latest

    async def load_state(self, connection: Any, portfolio_id: str, owner_id: str | None,
                         transaction_ids: Iterable[str] = (), *, stored: dict[str, repo.StoredFigures] | None = None,
                         locked: dict[str, Any] | None = None) -> PortfolioState | None:
        row = self._header(portfolio_id)
        if row is None or (owner_id is not None and row["owner_id"] != owner_id):
            return None
        state = repo.state_of(row, stored)  # type: ignore[arg-type]
        await self.load_transactions(connection, state, transaction_ids)
        return state

    async def load_transactions(self, connection: Any, state: PortfolioState, transaction_ids: Iterable[str]) -> None:
        for transaction_id in transaction_ids:
            row = self.transactions.get(transaction_id)
            if row is not None and row["portfolio_id"] == state.portfolio_id:
                state.transactions[transaction_id] = repo.transaction_state(row)  # type: ignore[arg-type]

    async def load_state_of_transaction(self, connection: Any, transaction_id: str,
                                        stored: dict[str, repo.StoredFigures] | None = None, *,
                                        portfolio_id: str | None = None, locked: dict[str, Any] | None = None
                                        ) -> PortfolioState | None:
        row = self.transactions.get(transaction_id)
        if row is None:
            return None
        return await self.load_state(connection, row["portfolio_id"], None, [transaction_id], stored=stored)

    async def save_state(self, connection: Any, state: PortfolioState, touched: Iterable[str], *,
                         header: bool = True) -> None:
        if header:
            self._save_header(state)
        for transaction_id in touched:
            tx = state.transactions.get(transaction_id)
            if tx is None:
                self.transactions.pop(transaction_id, None)
                continue
            row = dict(zip(repo.TX_COLUMNS, repo.transaction_row(state.portfolio_id, tx), strict=True))
            before = self.transactions.get(transaction_id, {})
            # as the upsert does: a trade that is not priced (any more) has no figures
            row.update({column: before.get(column) if row["status"] == "priced" else None
                        for column in repo.OUTCOME_COLUMNS})
            self.transactions[transaction_id] = row
        if state.deleted:
            for transaction_id in [t for t, row in self.transactions.items()
                                   if row["portfolio_id"] == state.portfolio_id]:
                del self.transactions[transaction_id]

    def _save_header(self, state: PortfolioState) -> None:
        row = self.portfolios.setdefault(state.portfolio_id, {
            "portfolio_id": state.portfolio_id, "owner_id": state.owner_id, "created_at": state.created_at,
            "ledger": json.dumps(Ledger.empty(state.method).to_json()), "metrics": "{}", "held_pending": 0,
            "held_failed": 0, "repair_from": None, "irr_due": False})
        row.update(name=state.name, method=state.method.value, goal_usd=state.goal_usd, version=state.version,
                   updated_at=state.updated_at, deleted=state.deleted, next_sequence=state.next_sequence)

    async def save_counts(self, connection: Any, state: PortfolioState, metrics: dict[str, Any]) -> None:
        self._save_header(state)
        self.portfolios[state.portfolio_id]["metrics"] = json.dumps(metrics)

    async def save_metrics(self, connection: Any, state: PortfolioState, projection: repo.Projection, *,
                           irr_due: bool) -> str | None:
        self._save_header(state)
        row = self.portfolios[state.portfolio_id]
        metrics = dict(projection.metrics)
        if irr_due:
            metrics["irr_pct"] = json.loads(row["metrics"]).get("irr_pct")
        row.update(ledger=json.dumps(projection.ledger.to_json()), metrics=json.dumps(metrics), irr_due=irr_due,
                   held_pending=projection.held_pending, held_failed=projection.held_failed,
                   repair_from=state.repair_from)
        return metrics.get("irr_pct")  # type: ignore[no-any-return]

    async def load_ledger(self, connection: Any, portfolio_id: str) -> Ledger:
        return Ledger.from_json(json.loads(self.portfolios[portfolio_id]["ledger"]))

    # ------------------------------------------------------------------ trades
    def _rows(self, portfolio_id: str) -> list[dict[str, Any]]:
        return sorted((row for row in self.transactions.values() if row["portfolio_id"] == portfolio_id),
                      key=lambda row: (row["at"], row["sequence"]))

    async def holdings_timeline(self, connection: Any, portfolio_id: str) -> list[Trade]:
        return [Trade(r["transaction_id"], Side(r["side"]), r["amount_btc"], r["at"], r["fee_usd"], None,
                      r["sequence"], TransactionKind(r["kind"]))
                for r in self._rows(portfolio_id)
                if r["status"] != "failed" and r["hold_reason"] != INSUFFICIENT_HOLDINGS]

    async def holdings_around(self, connection: Any, portfolio_id: str, key: tuple[datetime, int]
                              ) -> tuple[Decimal, list[tuple[Trade, Decimal]]]:
        return holdings_around(await self.holdings_timeline(connection, portfolio_id), key)

    async def pending_buys(self, connection: Any, portfolio_id: str) -> list[Trade]:
        return [Trade(r["transaction_id"], Side.BUY, r["amount_btc"], r["at"], r["fee_usd"], None, r["sequence"])
                for r in self._rows(portfolio_id) if r["status"] == "pending" and r["side"] == "buy"]

    async def priced_trades(self, connection: Any, portfolio_id: str, after: tuple[datetime, int] | None = None
                            ) -> list[Trade]:
        return [repo.trade_of(r) for r in self._rows(portfolio_id)  # type: ignore[arg-type]
                if r["status"] == "priced" and (after is None or (r["at"], r["sequence"]) > after)]

    async def save_holds(self, connection: Any, portfolio_id: str, holds: dict[str, SellHold]) -> None:
        for row in self._rows(portfolio_id):
            hold = holds.get(row["transaction_id"])
            row["hold_reason"], row["hold_detail"] = (hold.reason, hold.detail) if hold else (None, None)

    async def save_outcomes(self, connection: Any, outcomes: Sequence[TradeOutcome]) -> None:
        for outcome in outcomes:
            row = self.transactions.get(outcome.transaction_id)
            if row is not None:
                row.update(zip(repo.OUTCOME_COLUMNS, (
                    outcome.cost_usd, outcome.proceeds_usd, outcome.cost_basis_sold_usd, outcome.realized_pnl_usd,
                    outcome.moved_cost_usd, outcome.moved_value_usd), strict=True))

    async def insert_transactions(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        for row in rows:
            self.transactions[row[0]] = dict(zip((*repo.TX_COLUMNS, *repo.OUTCOME_COLUMNS), row, strict=True))

    async def save_outcomes_and_flows(self, connection: Any, portfolio_id: str, outcomes: Sequence[TradeOutcome],
                                      new_rows: Sequence[tuple[Any, ...]] = ()) -> list[tuple[datetime, Decimal]]:
        await self.insert_transactions(connection, new_rows)
        await self.save_outcomes(connection, outcomes)
        return (await self.counted_cash_flows(connection, [portfolio_id]))[portfolio_id]

    async def save_figures(self, connection: Any, state: PortfolioState, projection: repo.Projection,
                           outcomes: Sequence[TradeOutcome], new_rows: Sequence[tuple[Any, ...]]) -> None:
        await self.insert_transactions(connection, new_rows)
        await self.save_outcomes(connection, outcomes)
        await self.save_metrics(connection, state, projection, irr_due=False)

    async def counted_cash_flows(self, connection: Any, portfolio_ids: Sequence[str]
                                 ) -> dict[str, list[tuple[datetime, Decimal]]]:
        flows: dict[str, list[tuple[datetime, Decimal]]] = {}
        for portfolio_id in portfolio_ids:
            flows[portfolio_id] = [
                (r["at"], -r["cost_usd"] if r["cost_usd"] is not None else r["proceeds_usd"])
                for r in self._rows(portfolio_id) if r["status"] == "priced" and r["hold_reason"] is None
                and (r["cost_usd"] is not None or r["proceeds_usd"] is not None)]
        return flows

    async def transaction_record(self, connection: Any, portfolio_id: str, transaction_id: str
                                 ) -> dict[str, Any] | None:
        row = self.transactions.get(transaction_id)
        return row if row is not None and row["portfolio_id"] == portfolio_id else None

    async def arrivals_held(self, connection: Any, source_ids: Sequence[str]) -> list[Any]:
        return []  # no transfer-outs on the trade path

    # ------------------------------------------------------------------ ledger checkpoints
    async def checkpoint_before(self, connection: Any, portfolio_id: str, key: tuple[datetime, int]) -> Ledger | None:
        earlier = [(count, ledger) for count, (at, sequence, ledger) in self.checkpoints.get(portfolio_id, {}).items()
                   if (at, sequence) < key]
        return Ledger.from_json(json.loads(max(earlier)[1])) if earlier else None

    async def replace_checkpoints(self, connection: Any, portfolio_id: str, after_count: int,
                                  ledgers: Sequence[Ledger]) -> None:
        kept = self.checkpoints.setdefault(portfolio_id, {})
        for count in [c for c in kept if c > after_count]:
            del kept[count]
        await self.store_checkpoints(connection, portfolio_id, ledgers)

    async def store_checkpoints(self, connection: Any, portfolio_id: str, ledgers: Sequence[Ledger]) -> None:
        for ledger in ledgers:
            _, count, at, sequence, text = repo.checkpoint_record(portfolio_id, ledger)
            self.checkpoints.setdefault(portfolio_id, {})[count] = (at, sequence, text)


def holdings_around(timeline: Iterable[Trade], key: tuple[datetime, int]) -> tuple[Decimal, list[tuple[Trade, Decimal]]]:
    """What repository.holdings_around reads in SQL, walked in Python: the holdings before `key` and the later sells
    after which the holdings reached a new low, each with those holdings."""
    ordered = sorted(timeline, key=lambda t: t.timeline_key)
    held = sum((t.amount_btc if t.is_buy else -t.amount_btc for t in ordered if t.timeline_key <= key), Decimal(0))
    lows: list[tuple[Trade, Decimal]] = []
    after, lowest = held, None
    for trade in (t for t in ordered if t.timeline_key > key):
        after += trade.amount_btc if trade.is_buy else -trade.amount_btc
        if not trade.is_buy and (lowest is None or after < lowest):
            lows.append((trade, after))
        lowest = after if lowest is None else min(lowest, after)
    return held, lows
