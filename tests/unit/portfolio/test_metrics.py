"""The metrics of SPEC, exact in Decimal: the worked example under every method, TWR, IRR and drawdown."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from contracts.portfolios import CostBasisMethod, Side, TransactionStatus
from contracts.types import parse_decimal
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import (
    InsufficientHoldings,
    InvalidTransaction,
    Trade,
    TradeOutcome,
    cash_flows,
    check_holdings,
    check_new_sell,
    irr_pct,
    portfolio_figures,
    replay_ledger,
    transaction_figures,
    validate_amount,
    validate_fee,
    validate_time,
    value_history,
)
from portfolio.domain.returns import ReturnIndex, percent
from portfolio.domain.sell_holds import INSUFFICIENT_HOLDINGS, WAITING_FOR_BUYS, sell_holds

from tests.unit.portfolio.fake_repository import holdings_around

T0 = datetime(2024, 1, 1, tzinfo=UTC)
D = Decimal


def trade(n: int, side: str, amount: str, price: str, fee: str, days: int = 0) -> Trade:
    return Trade(f"t{n}", Side(side), D(amount), T0 + timedelta(days=days, hours=n), D(fee), D(price), n)


WORKED = [trade(1, "buy", "1", "40000", "10"), trade(2, "buy", "1", "60000", "10"),
          trade(3, "sell", "0.5", "70000", "5")]


def figures(method: CostBasisMethod, trades=WORKED, latest="50000"):
    ledger, _ = replay_ledger(method, trades)
    return portfolio_figures(ledger, latest_price=D(latest), as_of=T0 + timedelta(days=1), goal_usd=D("150000"))


def test_spec_worked_example_is_exact_under_average_cost() -> None:
    f = figures(CostBasisMethod.AVERAGE)
    assert f.invested_usd == D("100020")
    assert f.realized_pnl_usd == D("9990")
    assert f.holdings_btc == D("1.5")
    assert f.cost_basis_usd == D("75015")
    assert f.average_price_usd == D("50010")
    assert f.current_value_usd == D("75000")
    assert f.unrealized_pnl_usd == D("-15")
    assert f.net_result_usd == D("9975")
    assert str(f.roi_pct).startswith("9.973")
    assert f.goal_progress_pct == D("50")


@pytest.mark.parametrize(
    ("method", "realized", "cost_basis", "unrealized"),
    [(CostBasisMethod.FIFO, "14990", "80015", "-5015"), (CostBasisMethod.LIFO, "4990", "70015", "4985"),
     (CostBasisMethod.HIFO, "4990", "70015", "4985")],
)
def test_spec_worked_example_under_lot_methods(method, realized, cost_basis, unrealized) -> None:
    f = figures(method)
    assert (f.realized_pnl_usd, f.cost_basis_usd, f.unrealized_pnl_usd) == (D(realized), D(cost_basis), D(unrealized))
    assert f.net_result_usd == D("9975")


def test_spec_worked_example_twr() -> None:
    f = figures(CostBasisMethod.AVERAGE)
    assert str(f.twr_pct).startswith("24.974")


def test_hifo_takes_the_most_expensive_lot_first_and_splits_lots_by_share() -> None:
    trades = [trade(1, "buy", "1", "30000", "0"), trade(2, "buy", "1", "60000", "0"), trade(3, "buy", "1", "45000", "0"),
              trade(4, "sell", "1.5", "50000", "0")]
    f = figures(CostBasisMethod.HIFO, trades)
    # sells all of the 60,000 lot and half of the 45,000 lot
    assert f.realized_pnl_usd == D("75000") - D("60000") - D("22500")
    assert f.cost_basis_usd == D("30000") + D("22500")


def test_per_transaction_figures() -> None:
    ledger, outcomes = replay_ledger(CostBasisMethod.AVERAGE, WORKED)
    buy = transaction_figures(WORKED[0], outcomes[0], D("50000"))
    assert (buy.cost_usd, buy.current_value_usd, buy.net_result_usd) == (D("40010"), D("50000"), D("9990"))
    assert str(buy.roi_pct).startswith("24.968")
    sell = transaction_figures(WORKED[2], outcomes[2], D("50000"))
    assert (sell.proceeds_usd, sell.cost_basis_sold_usd, sell.realized_pnl_usd) == (D("34995"), D("25005"), D("9990"))


def test_irr_of_a_one_year_doubling_is_100_percent() -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    rate = irr_pct([(start, D("-1000")), (start + timedelta(days=365), D("2000"))])
    assert rate == D("100.0000000000")


def test_irr_has_no_root_when_all_flows_share_a_sign() -> None:
    assert irr_pct([(T0, D("-1")), (T0 + timedelta(days=1), D("-1"))]) is None


def test_irr_of_the_worked_example_sets_npv_to_zero() -> None:
    ledger, outcomes = replay_ledger(CostBasisMethod.AVERAGE, WORKED)
    flows = cash_flows([(t.at, o) for t, o in zip(WORKED, outcomes, strict=True)])
    as_of = T0 + timedelta(days=30)
    f = portfolio_figures(ledger, latest_price=D("50000"), as_of=as_of, goal_usd=None, flows=flows)
    r = float(f.irr_pct) / 100
    all_flows = [*flows, (as_of, f.current_value_usd)]
    npv = sum(float(a) * (1 + r) ** (-(t - T0).total_seconds() / (365 * 86400)) for t, a in all_flows)
    assert abs(npv) < 1e-3


def test_max_drawdown_counts_midnights_and_the_end() -> None:
    trades = [trade(0, "buy", "1", "100", "0")]
    ledger, _ = replay_ledger(CostBasisMethod.AVERAGE, trades)
    midnights = [(T0 + timedelta(days=1), D("50")), (T0 + timedelta(days=2), D("200"))]
    f = portfolio_figures(ledger, latest_price=D("150"), as_of=T0 + timedelta(days=3), goal_usd=None,
                          midnight_opens_since_last_trade=midnights)
    assert f.max_drawdown_pct == D("50")  # 100 → 50
    assert f.twr_pct == D("50")


def test_validation_messages_are_sentences() -> None:
    with pytest.raises(InvalidTransaction, match="at most 8 decimals"):
        validate_amount(D("0.000000001"))
    with pytest.raises(InvalidTransaction, match="more than 0"):
        validate_amount(D("0"))
    with pytest.raises(InvalidTransaction, match="21,000,000"):
        validate_amount(D("21000000.00000001"))
    with pytest.raises(InvalidTransaction, match="2010-07-17"):
        validate_time(datetime(2010, 7, 16, tzinfo=UTC), T0)
    with pytest.raises(InvalidTransaction, match="future"):
        validate_time(T0 + timedelta(seconds=1), T0)
    with pytest.raises(InvalidTransaction, match="negative"):
        validate_fee(D("-0.01"))
    assert validate_amount(D("0.00000001")) == D("0.00000001")


def test_sell_over_holdings_is_refused_with_reason() -> None:
    with pytest.raises(InsufficientHoldings, match="You hold 0.5 BTC on 2024-01-01 01:00 UTC; you can't sell 2 BTC"):
        check_holdings([trade(0, "buy", "0.5", "1", "0"), trade(1, "sell", "2", "1", "0")])


def test_value_history_follows_trades_and_prices() -> None:
    points = value_history(WORKED, [(T0, D("40000")), (T0 + timedelta(hours=2), D("60000")),
                                    (T0 + timedelta(hours=5), D("50000"))])
    assert [(p.holdings_btc, p.invested_usd, p.value_usd) for p in points] == [
        (D("0"), D("0"), D("0")), (D("2"), D("100020"), D("120000")), (D("1.5"), D("100020"), D("75000"))]


def test_a_batch_refuses_only_the_sells_over_holdings_and_judges_later_rows_without_them() -> None:
    from portfolio.domain import refuse_oversized_sells

    existing = [trade(0, "buy", "1", "1", "0")]
    batch = [trade(1, "sell", "0.6", "1", "0"), trade(2, "sell", "0.6", "1", "0"), trade(3, "sell", "0.4", "1", "0")]
    refused = refuse_oversized_sells(existing, batch)
    assert list(refused) == ["t2"]
    assert "You hold 0.4 BTC" in refused["t2"].message
    with pytest.raises(InsufficientHoldings):  # a new early sell that would break a recorded later sell
        refuse_oversized_sells([trade(0, "buy", "1", "1", "0"), trade(5, "sell", "1", "1", "0")],
                               [trade(1, "sell", "0.5", "1", "0")])


def test_a_sell_priced_before_the_buys_it_sells_waits_for_them() -> None:
    buy = trade(1, "buy", "1", "40000", "0")
    sell = trade(2, "sell", "0.5", "50000", "0")
    pending_buy = Trade(buy.transaction_id, buy.side, buy.amount_btc, buy.at, buy.fee_usd, None, buy.sequence)
    ledger, outcomes = replay_ledger(CostBasisMethod.FIFO, [pending_buy, sell])
    assert outcomes == [TradeOutcome("t2")] and ledger.holdings_btc == 0  # left out: no figures
    assert [u.transaction_id for u in ledger.uncovered] == ["t2"]
    holds = sell_holds(ledger.uncovered, [pending_buy])
    assert holds["t2"].reason == WAITING_FOR_BUYS and holds["t2"].status == TransactionStatus.PENDING
    failed = sell_holds(ledger.uncovered, [])  # the buy failed to price: nothing can cover the sell
    assert failed["t2"].reason == INSUFFICIENT_HOLDINGS and failed["t2"].status == TransactionStatus.FAILED
    assert "You hold 0 BTC" in failed["t2"].detail and "can't be counted" in failed["t2"].detail
    ledger, outcomes = replay_ledger(CostBasisMethod.FIFO, [buy, sell])
    assert [o.transaction_id for o in outcomes] == ["t1", "t2"] and ledger.holdings_btc == D("0.5")
    assert ledger.uncovered == []


def test_irr_finds_roots_far_from_zero() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    a_day = irr_pct([(start, D(-100)), (start + timedelta(days=1), D(110))])
    assert a_day is not None and abs(a_day / (D("1.1") ** 365 * 100 - 100) - 1) < D("1e-9")
    an_hour = irr_pct([(start, D(-100)), (start + timedelta(hours=1), D(101))])
    assert an_hour is not None and abs(an_hour / (D("1.01") ** 8760 * 100 - 100) - 1) < D("1e-9")
    near_total_loss = irr_pct([(start, D(-100)), (start + timedelta(days=365), D("1e-10"))])
    assert near_total_loss is not None and D(-100) < near_total_loss < D("-99.99999")
    assert irr_pct([(start, D(-100)), (start + timedelta(days=365), D(50)), (start + timedelta(days=730), D(50))]) == 0
    assert irr_pct([(start, D(-100)), (start + timedelta(days=1), D(0))]) is None  # no root
    # +10 % in an hour is 10^362 % a year: beyond what a decimal of 100 digits before the point carries, so none
    assert irr_pct([(start, D(-100)), (start + timedelta(hours=1), D(110))]) is None
    assert parse_decimal(str(an_hour)) == an_hour  # the largest reported rates still travel in the one grammar


@given(st.lists(st.tuples(st.integers(0, 800 * 24), st.integers(-1000, 1000)), min_size=2, max_size=8))
def test_an_irr_found_zeroes_the_net_present_value(flows: list[tuple[int, int]]) -> None:
    dated = [(T0 + timedelta(hours=hours), D(amount)) for hours, amount in flows]
    rate = irr_pct(dated)
    if rate is None or rate <= -99 or rate > D("1e6"):
        return  # near −100 % the rate reported to 10 decimals can't pin the root (1 + r is below 1e-2)
    start = min(at for at, _ in dated)
    base = 1 + float(rate) / 100
    npv = sum(float(amount) * base ** (-(at - start).total_seconds() / (365 * 86400)) for at, amount in dated)
    assert abs(npv) <= 1e-6 * sum(abs(float(amount)) for _, amount in dated)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 9), st.integers(0, 30)), max_size=25),
       st.integers(1, 12), st.integers(0, 31))
def test_a_new_sell_checked_against_the_later_lows_is_refused_exactly_as_by_the_whole_timeline(
        steps: list[tuple[bool, int, int]], amount: int, day: int) -> None:
    """check_new_sell, given only the holdings before the sell and the later sells that reached a new low, refuses
    the same sells with the same sentence as check_holdings over the whole timeline."""
    timeline: list[Trade] = []
    for sequence, (is_buy, units, on_day) in enumerate(steps):
        trade = Trade(f"t{sequence}", Side.BUY if is_buy else Side.SELL, Decimal(units) / 10,
                      datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=on_day), Decimal(0), None, sequence)
        try:
            check_holdings([*timeline, trade])
        except InsufficientHoldings:
            continue  # an existing timeline is always covered
        timeline.append(trade)
    sell = Trade("new", Side.SELL, Decimal(amount) / 10, datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day),
                 Decimal(0), None, len(steps))
    outcomes = []
    for check in (lambda: check_holdings([*timeline, sell]),
                  lambda: check_new_sell(sell, *holdings_around(timeline, sell.timeline_key))):
        try:
            check()
            outcomes.append(None)
        except InsufficientHoldings as refusal:
            outcomes.append((refusal.message, refusal.details))
    assert outcomes[0] == outcomes[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=12), st.lists(st.integers(1, 10**6), max_size=12),
       st.integers(1, 10**6))
def test_valuing_a_folded_index_at_the_latest_price_equals_observing_that_price(
        trade_prices: list[int], midnights: list[int], latest: int) -> None:
    """ReturnIndex.valued_at (TWR and drawdown at T, the index unchanged) is the old fold: observe I(T), then read."""
    index = ReturnIndex()
    for n, price in enumerate(trade_prices):
        index.apply(Decimal(price), Decimal(n + 1), Decimal(price))
    folded = index.folded([(T0, Decimal(p)) for p in midnights])
    before = (folded.peak, folded.max_drawdown)
    probe = index.folded([(T0, Decimal(p)) for p in midnights])
    final = probe.index_at(Decimal(latest))
    probe.observe(final)
    assert folded.valued_at(Decimal(latest)) == (percent((final - 1) * 100), percent(probe.max_drawdown * 100))
    assert (folded.peak, folded.max_drawdown) == before
