"""Turning projection rows and figures into the contract's views."""

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from contracts.portfolios import (
    CostBasisMethod,
    PortfolioMetrics,
    PortfolioView,
    PriceSource,
    Side,
    TaxReport,
    TaxReportLine,
    TaxTotals,
    TransactionKind,
    TransactionMetrics,
    TransactionStatus,
    TransactionView,
    TransferLink,
)
from contracts.types import decimal_text

from portfolio.domain import PortfolioFigures, TaxYear, Trade, TradeOutcome, TransactionFigures, transaction_figures
from portfolio.domain.events import PortfolioState, TransactionState
from portfolio.domain.sell_holds import SellHold

FIGURE_FIELDS = tuple(f.name for f in fields(PortfolioFigures))


def metrics_document(figures: PortfolioFigures, counts: dict[str, int]) -> dict[str, Any]:
    """The stored metrics JSON: PortfolioMetrics' fields, money as strings."""
    document: dict[str, Any] = {}
    for name in FIGURE_FIELDS:  # not dataclasses.asdict: it deep-copies, and a tick builds thousands of these
        value = getattr(figures, name)
        if isinstance(value, Decimal):
            document[name] = decimal_text(value)
        elif isinstance(value, datetime):
            document[name] = value.isoformat()
        else:
            document[name] = value
    return with_counts(document, counts)


def with_counts(document: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """The metrics document with the transaction counts set from `counts` (by status)."""
    document["transaction_count"] = sum(counts.values())
    document["pending_count"] = counts.get("pending", 0)
    document["failed_count"] = counts.get("failed", 0)
    return document


def portfolio_view(row: asyncpg.Record) -> PortfolioView:
    metrics = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else row["metrics"]
    return PortfolioView(
        portfolio_id=row["portfolio_id"], owner_id=row["owner_id"], name=row["name"],
        cost_basis_method=CostBasisMethod(row["method"]), goal_usd=row["goal_usd"], version=row["version"],
        created_at=row["created_at"], updated_at=row["updated_at"], metrics=PortfolioMetrics.model_validate(metrics))


def portfolio_view_of(state: PortfolioState, metrics: dict[str, Any]) -> PortfolioView:
    """The same view from the state and metrics a handler has just stored, without reading the row back."""
    return PortfolioView(
        portfolio_id=state.portfolio_id, owner_id=state.owner_id, name=state.name, cost_basis_method=state.method,
        goal_usd=state.goal_usd, version=state.version, created_at=state.created_at, updated_at=state.updated_at,
        metrics=PortfolioMetrics.model_validate(metrics))


TRANSACTION_FIELDS = tuple(field.name for field in fields(TransactionState))
TRANSACTION_FIGURE_FIELDS = tuple(field.name for field in fields(TransactionFigures))


def pending_transaction_row(portfolio_id: str, tx: TransactionState) -> dict[str, Any]:
    """A transaction not yet priced, shaped like its row (it has no figures yet). Its fields as they are: asdict would
    deep-copy every value, and nothing here changes them."""
    return {**{name: getattr(tx, name) for name in TRANSACTION_FIELDS}, "portfolio_id": portfolio_id,
            "kind": tx.kind.value}


def transaction_view(row: Mapping[str, Any], latest_price: Decimal | None) -> TransactionView:
    status = TransactionStatus(row["status"])
    failure_reason, failure_detail = row["failure_reason"], row["failure_detail"]
    if row["hold_reason"] is not None:  # a priced sell the ledger leaves out: pending or failed, no figures
        hold = SellHold(row["transaction_id"], row["hold_reason"], row["hold_detail"])
        status = hold.status
        failure_reason = hold.reason if status == TransactionStatus.FAILED else None
        failure_detail = hold.detail
    metrics = None
    kind = TransactionKind(row["kind"])
    if status == TransactionStatus.PRICED:
        trade = Trade(row["transaction_id"], Side(row["side"]), row["amount_btc"], row["at"], row["fee_usd"],
                      row["price_usd"], row["sequence"], kind)
        outcome = TradeOutcome(row["transaction_id"], row["cost_usd"], row["proceeds_usd"],
                               row["cost_basis_sold_usd"], row["realized_pnl_usd"], row["moved_cost_usd"],
                               row["moved_value_usd"])
        figures = transaction_figures(trade, outcome, latest_price)
        metrics = TransactionMetrics(**{name: getattr(figures, name) for name in TRANSACTION_FIGURE_FIELDS})
    transfer = None if row["transfer_id"] is None else TransferLink(
        transfer_id=row["transfer_id"], counterpart_portfolio_id=row["counterpart_portfolio_id"],
        counterpart_transaction_id=row["counterpart_transaction_id"])
    return TransactionView(
        transaction_id=row["transaction_id"], portfolio_id=row["portfolio_id"], side=Side(row["side"]),
        amount_btc=row["amount_btc"], at=row["at"], fee_usd=row["fee_usd"], price_usd=row["price_usd"],
        price_source=PriceSource(row["price_source"]) if row["price_source"] else None,
        price_hour=row["price_hour"], status=status, failure_reason=failure_reason,
        failure_detail=failure_detail, note=row["note"], recorded_at=row["recorded_at"],
        updated_at=row["updated_at"], metrics=metrics, kind=kind, fee_btc=row["fee_btc"], transfer=transfer)


def tax_report_view(portfolio_id: str, report: TaxYear) -> TaxReport:
    totals = report.totals
    return TaxReport(
        portfolio_id=portfolio_id, year=report.year, method=report.method, pending_sells=report.pending_sells,
        lines=[TaxReportLine(sell_transaction_id=line.sell_transaction_id, acquired_at=line.acquired_at,
                             sold_at=line.sold_at, amount_btc=line.amount_btc, proceeds_usd=line.proceeds_usd,
                             cost_basis_usd=line.cost_basis_usd, gain_usd=line.gain_usd, term=line.term)
               for line in report.lines],
        totals=TaxTotals(proceeds_usd=totals.proceeds_usd, cost_basis_usd=totals.cost_basis_usd,
                         gain_usd=totals.gain_usd, short_term_gain_usd=totals.short_term_gain_usd,
                         long_term_gain_usd=totals.long_term_gain_usd))
