"""Transfers in the pure domain: lots leave by the source's method and arrive with their cost and buy times."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from contracts.portfolios import CostBasisMethod, Side, TaxTerm, TransactionKind
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import InvalidTransaction, Ledger, Trade, cash_flows, replay_ledger
from portfolio.domain.events import (
    PortfolioCreated,
    TransactionPriced,
    TransactionRecorded,
    TransferLotsSet,
    TransferReceived,
    TransferSent,
    apply_event,
)
from portfolio.domain.tax_report import tax_year
from portfolio.domain.transfers import MovedLot, arriving_lots, counted_arrival, validate_transfer_fee

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def buy(tx: str, amount: str, hours: int, price: str, sequence: int, fee: str = "0") -> Trade:
    return Trade(tx, Side.BUY, D(amount), at(hours), D(fee), D(price), sequence)


def sell(tx: str, amount: str, hours: int, price: str, sequence: int) -> Trade:
    return Trade(tx, Side.SELL, D(amount), at(hours), D(0), D(price), sequence)


def transfer_out(amount: str, hours: int, price: str, sequence: int, fee: str = "0") -> Trade:
    return Trade("out", Side.SELL, D(amount), at(hours), D(0), D(price), sequence, TransactionKind.TRANSFER_OUT,
                 D(fee))


def move(method: CostBasisMethod, source_trades: list[Trade], out: Trade, destination: CostBasisMethod,
         destination_trades: list[Trade] = (), in_sequence: int = 100) -> tuple[Ledger, Ledger, MovedLot | None]:
    """Both ledgers after the transfer, as the service computes them: the source's outcome gives the lots."""
    source, outcomes = replay_ledger(method, [*source_trades, out])
    sent = next(o for o in outcomes if o.transaction_id == "out")
    arrival = counted_arrival(out.price_usd, None, sent.moved_lots, out.fee_btc)  # type: ignore[arg-type]
    arriving = Trade("in", Side.BUY, out.amount_btc - out.fee_btc, out.at, D(0), out.price_usd, in_sequence,
                     TransactionKind.TRANSFER_IN, out.fee_btc, arrival.lots)
    target, _ = replay_ledger(destination, [*destination_trades, arriving])
    return source, target, sent


BUYS = [buy("b1", "1", 0, "40000", 1, fee="10"), buy("b2", "1", 10, "60000", 2, fee="10"),
        buy("b3", "1", 20, "50000", 3)]


@pytest.mark.parametrize(("method", "moved_cost", "times"), [
    (CostBasisMethod.FIFO, D("40010") + D("30005"), [at(0), at(10)]),
    (CostBasisMethod.LIFO, D("50000") + D("30005"), [at(20), at(10)]),
    (CostBasisMethod.HIFO, D("60010") + D("25000"), [at(10), at(20)]),
])
def test_lots_leave_by_the_source_method_and_keep_cost_and_buy_times(method, moved_cost, times) -> None:
    out = transfer_out("1.5", 30, "70000", 4)
    source, target, sent = move(method, BUYS, out, CostBasisMethod.FIFO)
    assert sent.moved_cost_usd == moved_cost
    assert [lot.acquired_at for lot in sent.moved_lots] == times
    assert source.holdings_btc == D("1.5") and target.holdings_btc == D("1.5")
    assert source.cost_basis_usd + target.cost_basis_usd == D("150020")
    assert target.cost_basis_usd == moved_cost
    assert source.realized_pnl_usd == 0 and target.realized_pnl_usd == 0
    assert sorted(lot.acquired_at for lot in target.book.open_lots()) == sorted(times)


def test_average_moves_its_share_of_the_average_cost() -> None:
    out = transfer_out("0.5", 30, "70000", 4)
    source, target, sent = move(CostBasisMethod.AVERAGE, BUYS, out, CostBasisMethod.AVERAGE)
    assert sent.moved_cost_usd == D("150020") * D("0.5") / 3  # the book's own formula: cost × amount / held
    assert abs(source.cost_basis_usd / source.holdings_btc - target.cost_basis_usd / target.holdings_btc) < D("1e-20")
    assert source.invested_usd + target.invested_usd == D("150020")
    assert [lot.acquired_at for lot in sent.moved_lots] == [out.at]  # average cost keeps no buy times
    assert source.realized_pnl_usd == 0


def test_the_fee_is_lost_on_the_way_but_its_cost_arrives() -> None:
    out = transfer_out("1.5", 30, "70000", 4, fee="0.6")
    source, target, sent = move(CostBasisMethod.FIFO, BUYS, out, CostBasisMethod.HIFO)
    assert target.holdings_btc == D("0.9")
    assert target.cost_basis_usd == sent.moved_cost_usd == D("70015")
    assert source.cost_basis_usd + target.cost_basis_usd == D("150020")


def test_a_fee_larger_than_the_last_lot_gives_its_cost_to_the_lot_before() -> None:
    lots = [MovedLot(at(0), D("1"), D("100")), MovedLot(at(1), D("0.2"), D("30"))]
    arrived = arriving_lots(lots, D("0.5"))
    assert arrived == (MovedLot(at(0), D("0.7"), D("130")),)


def test_a_fee_must_leave_something_to_arrive() -> None:
    with pytest.raises(InvalidTransaction):
        validate_transfer_fee(D("1"), D("1"))
    with pytest.raises(InvalidTransaction):
        validate_transfer_fee(D("-0.1"), D("1"))
    assert validate_transfer_fee(D("0.00000001"), D("1")) == D("0.00000001")


def test_arriving_old_lots_take_their_buy_time_place_under_fifo() -> None:
    out = transfer_out("1", 30, "70000", 4)
    own = [buy("d1", "1", 25, "55000", 1)]
    _, target, _ = move(CostBasisMethod.FIFO, BUYS, out, CostBasisMethod.FIFO, own)
    # the next sell of the destination takes the lot bought at hour 0 first, though it arrived later
    assert [lot.acquired_at for lot in target.book.open_lots()] == [at(0), at(25)]


def test_a_transfer_is_a_flow_out_of_the_source_and_into_the_destination() -> None:
    out = transfer_out("1", 30, "70000", 4, fee="0.1")
    source, outcomes = replay_ledger(CostBasisMethod.FIFO, [*BUYS, out])
    flows = cash_flows([(out.at, o) for o in outcomes])
    assert flows[-1] == (out.at, D("70000"))
    _, target, sent = move(CostBasisMethod.FIFO, BUYS, out, CostBasisMethod.FIFO)
    assert target.returns.value_after == D("0.9") * D("70000")  # the fee shows as the destination's loss


@st.composite
def histories(draw):
    """Random buys and sells of a source, and a transfer of part of what it holds at a random time."""
    trades, held, sequence = [], D(0), 0
    for hour in range(draw(st.integers(1, 12))):
        sequence += 1
        price = D(draw(st.integers(1000, 90000)))
        if held > 0 and draw(st.booleans()):
            amount = (held * D(draw(st.integers(1, 100))) / 100).quantize(D("0.00000001"))
            if amount > 0:
                trades.append(Trade(f"s{sequence}", Side.SELL, amount, at(hour), D(0), price, sequence))
                held -= amount
                continue
        amount = D(draw(st.integers(1, 10**8))) / 10**7
        trades.append(Trade(f"b{sequence}", Side.BUY, amount, at(hour), D(draw(st.integers(0, 50))), price, sequence))
        held += amount
    if held < D("0.00000001"):  # sold out: a last buy, so that there is something to move
        sequence += 1
        trades.append(Trade(f"b{sequence}", Side.BUY, D("0.5"), at(19), D(0), D(30000), sequence))
        held += D("0.5")
    share = D(draw(st.integers(1, 100))) / 100
    amount = max((held * share).quantize(D("0.00000001")), D("0.00000001"))
    fee = (amount * D(draw(st.integers(0, 99))) / 100).quantize(D("0.00000001"))
    return trades, transfer_out(str(min(amount, held)), 20, str(draw(st.integers(1000, 90000))), sequence + 1,
                                str(fee) if fee < min(amount, held) else "0")


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from(list(CostBasisMethod)), st.sampled_from(list(CostBasisMethod)))
def test_a_transfer_moves_cost_without_creating_or_realizing_any(history, method, destination_method) -> None:
    trades, out = history
    without, _ = replay_ledger(method, trades)
    source, target, sent = move(method, trades, out, destination_method)
    total = source.cost_basis_usd + target.cost_basis_usd
    assert abs(total - without.cost_basis_usd) <= D("1e-18") * max(D(1), without.cost_basis_usd)
    assert source.realized_pnl_usd == without.realized_pnl_usd and target.realized_pnl_usd == 0
    assert target.holdings_btc == out.amount_btc - out.fee_btc
    # 28 significant digits: the two sides' shares may differ from the whole in the last digit
    assert abs(source.invested_usd + target.invested_usd - without.invested_usd) <= \
        D("1e-18") * max(D(1), without.invested_usd)
    # the source's ledger rebuilt from a checkpoint-free replay equals itself: no hidden state in a transfer
    again, _ = replay_ledger(method, [*trades, out])
    assert again.to_json() == source.to_json()


def folded_trades(events: list) -> list[Trade]:
    """A stream's priced trades as the replay gets them: every event folded by apply_event."""
    state = None
    for event in events:
        state = apply_event(state, event, T0)
    return [tx.trade() for tx in state.transactions.values()]


@settings(max_examples=100, deadline=None)
@given(histories(), st.sampled_from(list(CostBasisMethod)), st.sampled_from(list(CostBasisMethod)),
       st.integers(0, 19), st.integers(1, 10**8))
def test_a_back_dated_buy_moves_the_same_cost_out_and_in_and_the_streams_replay_to_it(
        history, method, destination_method, hour, satoshis) -> None:
    trades, out = history
    late = Trade("late", Side.BUY, D(satoshis) / 10**8, at(hour) + timedelta(minutes=30), D(1), D(33333), 99)
    source, target, sent = move(method, [*trades, late], out, destination_method)
    without, _ = replay_ledger(method, [*trades, late])
    assert abs(source.cost_basis_usd + target.cost_basis_usd - without.cost_basis_usd) <= \
        D("1e-18") * max(D(1), without.cost_basis_usd)
    # the streams as the service writes them: the destination's log holds the lots the source's ledger sent
    first_arrival = move(method, trades, out, destination_method)[2]
    source_log = [PortfolioCreated("s", "o", "S", method, None),
                  *[TransactionRecorded(t.transaction_id, t.sequence, t.side, t.amount_btc, t.at, t.fee_usd,
                                        t.price_usd, None, None) for t in [*trades, late]],
                  TransferSent("out", "x", out.sequence, out.amount_btc, out.fee_btc, out.at, None, "d", "in", "r"),
                  TransactionPriced("out", out.price_usd, None, "market")]
    destination_log = [
        PortfolioCreated("d", "o", "D", destination_method, None),
        TransferReceived("in", "x", 1, out.amount_btc - out.fee_btc, out.fee_btc, out.at, None, "s", "out"),
        TransferLotsSet("in", counted_arrival(out.price_usd, None, first_arrival.moved_lots, out.fee_btc)),
        TransferLotsSet("in", counted_arrival(out.price_usd, None, sent.moved_lots, out.fee_btc))]
    replayed_source, _ = replay_ledger(method, folded_trades(source_log))
    replayed_target, _ = replay_ledger(destination_method, folded_trades(destination_log))
    assert replayed_source.to_json() == source.to_json()
    assert replayed_target.cost_basis_usd == target.cost_basis_usd
    assert replayed_target.holdings_btc == target.holdings_btc and replayed_target.realized_pnl_usd == 0


def test_the_tax_report_follows_the_lots_a_transfer_moved() -> None:
    """The source's transfer sells nothing; a sell in the destination is matched to the moved lots, whose buy time
    keeps the term (a lot bought in January 2023 is long-term when sold in 2024)."""
    old = Trade("old", Side.BUY, D("1"), datetime(2023, 1, 10, tzinfo=UTC), D(0), D("20000"), 1)
    out = Trade("out", Side.SELL, D("0.5"), datetime(2024, 3, 1, tzinfo=UTC), D(0), D("60000"), 2,
                TransactionKind.TRANSFER_OUT)
    _, outcomes = replay_ledger(CostBasisMethod.FIFO, [old, out])
    arrival = counted_arrival(D("60000"), None, outcomes[-1].moved_lots, D(0))
    arrived = Trade("in", Side.BUY, D("0.5"), out.at, D(0), D("60000"), 1, TransactionKind.TRANSFER_IN, D(0),
                    arrival.lots)
    sold = Trade("sold", Side.SELL, D("0.5"), datetime(2024, 4, 1, tzinfo=UTC), D(0), D("70000"), 2)
    assert tax_year([old, out], CostBasisMethod.FIFO, 2024).lines == []
    lines = tax_year([arrived, sold], CostBasisMethod.FIFO, 2024).lines
    assert [(line.acquired_at, line.cost_basis_usd, line.gain_usd, line.term) for line in lines] == [
        (old.at, D("10000"), D("25000"), TaxTerm.LONG)]
