"""Invariants of the ledger under random trade sequences (Hypothesis)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.portfolios import CostBasisMethod, Side
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import (
    InsufficientHoldings,
    Ledger,
    Trade,
    check_holdings,
    export_transactions_csv,
    parse_transactions_csv,
    portfolio_figures,
    replay_ledger,
)

T0 = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
methods = st.sampled_from(list(CostBasisMethod))
amounts = st.integers(min_value=1, max_value=300_000_000).map(lambda s: Decimal(s) / Decimal(10**8))
prices = st.integers(min_value=100, max_value=10_000_000).map(lambda c: Decimal(c) / Decimal(100))
fees = st.integers(min_value=0, max_value=5_000).map(lambda c: Decimal(c) / Decimal(100))


@st.composite
def timelines(draw, max_size: int = 25) -> list[Trade]:
    """A valid timeline: sells never exceed what is held at their time."""
    count = draw(st.integers(min_value=1, max_value=max_size))
    trades, held = [], Decimal(0)
    for n in range(count):
        sell = held > 0 and draw(st.booleans())
        amount = min(draw(amounts), held) if sell else draw(amounts)
        at = T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=20_000)))
        trades.append(Trade(f"t{n}", Side.SELL if sell else Side.BUY, amount, at, draw(fees), draw(prices), n))
        held += -amount if sell else amount
    # keep the drawn order as the timeline by re-timing in sequence
    ordered = sorted(t.at for t in trades)
    return [Trade(t.transaction_id, t.side, t.amount_btc, ordered[i], t.fee_usd, t.price_usd, i)
            for i, t in enumerate(trades)]


def state(ledger: Ledger) -> dict:
    return ledger.to_json()


@settings(max_examples=150, deadline=None)
@given(timelines(), methods, st.data())
def test_incremental_ledger_with_checkpoint_equals_full_replay_after_edit_insert_or_delete(trades, method, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(trades)))
    checkpoint, _ = replay_ledger(method, trades[:cut])
    kept = checkpoint.copy()
    action = data.draw(st.sampled_from(["delete_last", "edit_fee", "append_buy"]))
    tail = list(trades[cut:])
    if action == "delete_last" and tail and tail[-1].side == Side.BUY:
        tail = tail[:-1]
    elif action == "edit_fee" and tail:
        first = tail[0]
        tail[0] = Trade(first.transaction_id, first.side, first.amount_btc, first.at, first.fee_usd + 1,
                        first.price_usd, first.sequence)
    elif action == "append_buy":
        last = trades[-1]
        tail.append(Trade("new", Side.BUY, Decimal("0.1"), last.at + timedelta(hours=1), Decimal(0), Decimal(100),
                          last.sequence + 1))
    check_holdings(trades[:cut] + tail)
    for trade in tail:
        kept.apply(trade)
    full, _ = replay_ledger(method, trades[:cut] + tail)
    assert state(kept) == state(full)
    assert state(Ledger.from_json(kept.to_json())) == state(kept)


@settings(max_examples=150, deadline=None)
@given(timelines(max_size=40), methods, st.data())
def test_a_back_dated_change_replayed_from_the_checkpoint_before_it_equals_a_full_replay(trades, method, data):
    """What the service does for a back-dated, edited or deleted trade: resume from the last checkpoint."""
    every = data.draw(st.integers(min_value=1, max_value=6))
    checkpoints: list[Ledger] = []
    replay_ledger(method, trades, checkpoints=checkpoints, checkpoint_every=every)
    assert [c.trade_count for c in checkpoints] == list(range(every, len(trades) + 1, every))
    index = data.draw(st.integers(min_value=0, max_value=len(trades) - 1))
    changed = trades[index]
    action = data.draw(st.sampled_from(["edit_fee", "delete_buy", "insert_buy"]))
    edited = list(trades)
    if action == "edit_fee":
        edited[index] = Trade(changed.transaction_id, changed.side, changed.amount_btc, changed.at,
                              changed.fee_usd + 2, changed.price_usd, changed.sequence)
    elif action == "delete_buy" and changed.side == Side.BUY:
        edited.pop(index)
    else:
        edited.append(Trade("back-dated", Side.BUY, Decimal("0.5"), changed.at, Decimal(1), Decimal(250),
                            changed.sequence))
    try:
        check_holdings(edited)
    except InsufficientHoldings:
        return  # the service refuses such a change
    key = changed.timeline_key
    before = [c for c in checkpoints if c.last_key is not None and c.last_key < key]
    start = before[-1].copy() if before else None
    later = [t for t in edited if start is None or t.timeline_key > start.last_key]
    resumed, resumed_outcomes = replay_ledger(method, later, start=start)
    full, full_outcomes = replay_ledger(method, edited)
    assert state(resumed) == state(full)
    assert resumed_outcomes == full_outcomes[len(full_outcomes) - len(resumed_outcomes):]


@settings(max_examples=150, deadline=None)
@given(timelines(), prices)
def test_net_result_at_a_full_sale_does_not_depend_on_the_method(trades, sale_price):
    held = sum((t.amount_btc if t.side == Side.BUY else -t.amount_btc for t in trades), Decimal(0))
    if held > 0:
        last = trades[-1]
        trades = [*trades, Trade("sale", Side.SELL, held, last.at + timedelta(hours=1), Decimal(0), sale_price,
                                 last.sequence + 1)]
    results = set()
    for method in CostBasisMethod:
        ledger, _ = replay_ledger(method, trades)
        assert ledger.holdings_btc == 0 and ledger.cost_basis_usd == 0
        f = portfolio_figures(ledger, latest_price=sale_price, as_of=None, goal_usd=None)
        results.add(f.net_result_usd.quantize(Decimal("1E-12")))
    assert len(results) == 1


@settings(max_examples=150, deadline=None)
@given(timelines(), methods, prices)
def test_cost_basis_is_never_negative_and_net_result_is_method_free(trades, method, latest):
    ledger, _ = replay_ledger(method, trades)
    assert ledger.cost_basis_usd >= 0
    assert ledger.holdings_btc >= 0
    f = portfolio_figures(ledger, latest_price=latest, as_of=None, goal_usd=None)
    expected = ledger.proceeds_usd + ledger.holdings_btc * latest - ledger.invested_usd
    assert abs(f.net_result_usd - expected) < Decimal("1E-12")


@settings(max_examples=60, deadline=None)
@given(timelines(), st.integers(min_value=0, max_value=24))
def test_a_sell_larger_than_holdings_anywhere_is_refused(trades, index):
    held = Decimal(0)
    for t in trades[: min(index, len(trades))]:
        held += t.amount_btc if t.side == Side.BUY else -t.amount_btc
    at = trades[min(index, len(trades) - 1)].at
    too_much = Trade("x", Side.SELL, held + Decimal("0.00000001"), at, Decimal(0), Decimal(1), -1)
    try:
        check_holdings([*trades, too_much])
    except InsufficientHoldings:
        return
    raise AssertionError("an oversized sell was accepted")


@settings(max_examples=60, deadline=None)
@given(timelines())
def test_csv_export_imports_back_to_the_same_trades(trades):
    fmt, rows = parse_transactions_csv(export_transactions_csv(trades), NOW)
    assert fmt == "generic"
    assert [(r.side, r.amount_btc, r.at, r.fee_usd, r.price_usd) for r in rows] == [
        (t.side, t.amount_btc, t.at, t.fee_usd, t.price_usd) for t in sorted(trades, key=lambda t: t.timeline_key)]
