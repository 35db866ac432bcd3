"""The figures users see: a portfolio's metrics and each transaction's, from the ledger and the latest price."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portfolio.domain.ledger import Ledger, TradeOutcome
from portfolio.domain.returns import ReturnIndex, irr_pct, percent
from portfolio.domain.trades import Trade

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class PortfolioFigures:
    holdings_btc: Decimal
    invested_usd: Decimal
    cost_basis_usd: Decimal
    average_price_usd: Decimal | None
    latest_price_usd: Decimal | None
    priced_until: datetime | None
    current_value_usd: Decimal
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    net_result_usd: Decimal
    roi_pct: Decimal | None
    goal_usd: Decimal | None
    goal_progress_pct: Decimal | None
    twr_pct: Decimal | None
    irr_pct: Decimal | None
    max_drawdown_pct: Decimal | None


@dataclass(frozen=True, slots=True)
class TransactionFigures:
    cost_usd: Decimal | None = None
    current_value_usd: Decimal | None = None
    net_result_usd: Decimal | None = None
    roi_pct: Decimal | None = None
    proceeds_usd: Decimal | None = None
    cost_basis_sold_usd: Decimal | None = None
    realized_pnl_usd: Decimal | None = None
    moved_cost_usd: Decimal | None = None
    moved_value_usd: Decimal | None = None


def cash_flows(outcomes: Sequence[tuple[datetime, TradeOutcome]]) -> list[tuple[datetime, Decimal]]:
    """IRR cash flows of the counted trades: −cost for each buy, +proceeds for each sell (a left-out sell has
    neither and no flow)."""
    return [(at, flow) for at, o in outcomes if (flow := o.cash_flow) is not None]


def irr_at(flows: Sequence[tuple[datetime, Decimal]], current_value: Decimal | None, as_of: datetime | None
           ) -> Decimal | None:
    """The IRR of the cash flows with the current value as the final flow at T (none without a latest price)."""
    if not flows or current_value is None or as_of is None:
        return None
    return irr_pct([*flows, (max(as_of, flows[-1][0]), current_value)])


def portfolio_figures(
    ledger: Ledger, *, latest_price: Decimal | None, as_of: datetime | None, goal_usd: Decimal | None,
    midnight_opens_since_last_trade: Sequence[tuple[datetime, Decimal]] = (),
    flows: Sequence[tuple[datetime, Decimal]] | None = None, folded_returns: ReturnIndex | None = None,
) -> PortfolioFigures:
    """Every portfolio metric of SPEC. IRR is computed only when `flows` (see cash_flows) are given.
    `folded_returns`: the ledger's return index with those midnights folded in, when the caller has it already."""
    holdings, cost_basis = ledger.holdings_btc, ledger.cost_basis_usd
    current_value = holdings * latest_price if latest_price is not None else Decimal(0)
    unrealized = current_value - cost_basis if latest_price is not None else Decimal(0)
    net = ledger.realized_pnl_usd + unrealized
    folded = folded_returns or ledger.returns.folded(midnight_opens_since_last_trade)
    twr, drawdown = folded.valued_at(latest_price)
    irr = irr_at(flows, current_value if latest_price is not None else None, as_of) if flows else None
    return PortfolioFigures(
        holdings_btc=holdings,
        invested_usd=ledger.invested_usd,
        cost_basis_usd=cost_basis,
        average_price_usd=cost_basis / holdings if holdings else None,
        latest_price_usd=latest_price,
        priced_until=as_of,
        current_value_usd=current_value,
        realized_pnl_usd=ledger.realized_pnl_usd,
        unrealized_pnl_usd=unrealized,
        net_result_usd=net,
        roi_pct=percent(net / ledger.invested_usd * HUNDRED) if ledger.invested_usd else None,
        goal_usd=goal_usd,
        goal_progress_pct=percent(current_value / goal_usd * HUNDRED) if goal_usd else None,
        twr_pct=twr,
        irr_pct=irr,
        max_drawdown_pct=drawdown,
    )


def transaction_figures(trade: Trade, outcome: TradeOutcome | None, latest_price: Decimal | None
                        ) -> TransactionFigures:
    """A buy: cost, current value, net result, ROI. A sell: proceeds, cost basis sold, realized. A transfer: the
    cost and value moved, and for the side that received it, its current value and result on that cost."""
    if outcome is None:
        return TransactionFigures()
    if trade.is_transfer and outcome.moved_cost_usd is not None:
        moved = {"moved_cost_usd": outcome.moved_cost_usd, "moved_value_usd": outcome.moved_value_usd}
        if not trade.is_buy or latest_price is None:
            return TransactionFigures(**moved)
        value = trade.amount_btc * latest_price
        net = value - outcome.moved_cost_usd
        return TransactionFigures(current_value_usd=value, net_result_usd=net, **moved,
                                  roi_pct=percent(net / outcome.moved_cost_usd * HUNDRED)
                                  if outcome.moved_cost_usd else None)
    if trade.is_buy and outcome.cost_usd is not None:
        if latest_price is None:
            return TransactionFigures(cost_usd=outcome.cost_usd)
        value = trade.amount_btc * latest_price
        net = value - outcome.cost_usd
        return TransactionFigures(cost_usd=outcome.cost_usd, current_value_usd=value, net_result_usd=net,
                                  roi_pct=percent(net / outcome.cost_usd * HUNDRED) if outcome.cost_usd else None)
    return TransactionFigures(proceeds_usd=outcome.proceeds_usd, cost_basis_sold_usd=outcome.cost_basis_sold_usd,
                              realized_pnl_usd=outcome.realized_pnl_usd)
