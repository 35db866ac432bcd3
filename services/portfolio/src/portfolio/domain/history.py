"""Value over time: holdings, invested and value at each point of a price series."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portfolio.domain.trades import Trade


@dataclass(frozen=True, slots=True)
class HistoryPointFigures:
    at: datetime
    price_usd: Decimal | None
    holdings_btc: Decimal
    invested_usd: Decimal
    value_usd: Decimal | None


def value_history(trades: Iterable[Trade], prices: Sequence[tuple[datetime, Decimal | None]],
                  moved_costs: Mapping[str, Decimal] | None = None) -> list[HistoryPointFigures]:
    """At each (time, price): holdings and invested from the counted trades at or before that time.

    Give it the trades the ledger counted; a sell the holdings do not cover is left out here too, as the ledger
    leaves it out, so holdings are never negative. A transfer moves invested by its moved cost (`moved_costs`,
    by transaction id, as the ledger counted it)."""
    moved_costs = moved_costs or {}
    ordered = sorted((t for t in trades if t.price_usd is not None), key=lambda t: t.timeline_key)
    points, position = [], 0
    holdings = invested = Decimal(0)
    for at, price in sorted(prices, key=lambda p: p[0]):
        while position < len(ordered) and ordered[position].at <= at:
            trade = ordered[position]
            if trade.is_buy:
                holdings += trade.amount_btc
                invested += (moved_costs.get(trade.transaction_id, Decimal(0)) if trade.is_transfer
                             else trade.cost_usd)
            elif trade.amount_btc <= holdings:
                holdings -= trade.amount_btc
                invested -= moved_costs.get(trade.transaction_id, Decimal(0)) if trade.is_transfer else 0
            position += 1
        points.append(HistoryPointFigures(at, price, holdings, invested,
                                          holdings * price if price is not None else None))
    return points
