"""Turning projection rows and figures into the contract's views."""

import json
from dataclasses import asdict
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
    TransactionMetrics,
    TransactionStatus,
    TransactionView,
)
from contracts.types import decimal_text

from portfolio.domain import PortfolioFigures, Trade, TradeOutcome, transaction_figures


def metrics_document(figures: PortfolioFigures, counts: dict[str, int]) -> dict[str, Any]:
    """The stored metrics JSON: PortfolioMetrics' fields, money as strings."""
    document: dict[str, Any] = {}
    for name, value in asdict(figures).items():
        if isinstance(value, Decimal):
            document[name] = decimal_text(value)
        elif isinstance(value, datetime):
            document[name] = value.isoformat()
        else:
            document[name] = value
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


def transaction_view(row: asyncpg.Record, latest_price: Decimal | None) -> TransactionView:
    status = TransactionStatus(row["status"])
    metrics = None
    if status == TransactionStatus.PRICED:
        trade = Trade(row["transaction_id"], Side(row["side"]), row["amount_btc"], row["at"], row["fee_usd"],
                      row["price_usd"], row["sequence"])
        outcome = TradeOutcome(row["transaction_id"], row["cost_usd"], row["proceeds_usd"],
                               row["cost_basis_sold_usd"], row["realized_pnl_usd"])
        metrics = TransactionMetrics(**asdict(transaction_figures(trade, outcome, latest_price)))
    return TransactionView(
        transaction_id=row["transaction_id"], portfolio_id=row["portfolio_id"], side=Side(row["side"]),
        amount_btc=row["amount_btc"], at=row["at"], fee_usd=row["fee_usd"], price_usd=row["price_usd"],
        price_source=PriceSource(row["price_source"]) if row["price_source"] else None,
        price_hour=row["price_hour"], status=status, failure_reason=row["failure_reason"],
        failure_detail=row["failure_detail"], note=row["note"], recorded_at=row["recorded_at"],
        updated_at=row["updated_at"], metrics=metrics)
