"""Hypothesis: the tax report agrees with the ledger's realized P&L, and every sold satoshi has exactly one lot."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.portfolios import CostBasisMethod, Side
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import Trade, replay_ledger, tax_year

T0 = datetime(2020, 1, 1, tzinfo=UTC)
lot_methods = st.sampled_from([CostBasisMethod.FIFO, CostBasisMethod.LIFO, CostBasisMethod.HIFO])
amounts = st.integers(min_value=1, max_value=300_000_000).map(lambda s: Decimal(s) / Decimal(10**8))
prices = st.integers(min_value=100, max_value=10_000_000).map(lambda c: Decimal(c) / Decimal(100))
fees = st.integers(min_value=0, max_value=5_000).map(lambda c: Decimal(c) / Decimal(100))
LAST_DIGITS = Decimal("1E-15")
"""Decimal keeps 28 significant digits: the same gains summed in another order (per lot, per year) can differ in
the last of them, far below a cent. Amounts are exact."""


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= LAST_DIGITS


@st.composite
def histories(draw) -> list[Trade]:
    """Buys and sells over about five years at distinct times; some sells are more than is held (left out)."""
    count = draw(st.integers(min_value=1, max_value=40))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=24 * 200), min_size=count, max_size=count))
    trades, held, at = [], Decimal(0), T0
    for n, gap in enumerate(gaps):
        at += timedelta(hours=gap)
        sell = held > 0 and draw(st.booleans())
        oversized = sell and draw(st.integers(min_value=0, max_value=9)) == 0
        amount = held + Decimal("0.00000001") if oversized else min(draw(amounts), held) if sell else draw(amounts)
        trades.append(Trade(f"t{n}", Side.SELL if sell else Side.BUY, amount, at, draw(fees), draw(prices), n))
        if not oversized:
            held += -amount if sell else amount
    return trades


@settings(max_examples=200, deadline=None)
@given(histories(), lot_methods)
def test_gains_over_every_year_equal_the_realized_pnl_and_each_sold_satoshi_has_one_lot(trades, method) -> None:
    ledger, outcomes = replay_ledger(method, trades)
    years = range(trades[0].at.year, trades[-1].at.year + 1)
    reports = [tax_year(trades, method, year) for year in years]
    lines = [line for report in reports for line in report.lines]

    assert close(sum((report.totals.gain_usd for report in reports), Decimal(0)), ledger.realized_pnl_usd)
    realized = {o.transaction_id: o.realized_pnl_usd for o in outcomes if o.realized_pnl_usd is not None}
    by_sell = defaultdict(list)
    for line in lines:
        by_sell[line.sell_transaction_id].append(line)
    assert set(by_sell) == set(realized)  # exactly the sells the ledger counts
    sells = {t.transaction_id: t for t in trades}
    for sell_id, sold in by_sell.items():
        sell = sells[sell_id]
        assert sum(line.amount_btc for line in sold) == sell.amount_btc
        assert close(sum(line.proceeds_usd for line in sold), sell.proceeds_usd)
        assert close(sum(line.gain_usd for line in sold), realized[sell_id])
        assert all(line.sold_at == sell.at and line.acquired_at <= sell.at for line in sold)
    taken = defaultdict(Decimal)
    for line in lines:
        taken[line.acquired_at] += line.amount_btc
    bought = {t.at: t.amount_btc for t in trades if t.is_buy}
    assert all(amount <= bought[at] for at, amount in taken.items())  # no lot gives more than it held
    assert sum(taken.values()) == sum(bought.values()) - ledger.holdings_btc
