"""Lots carry their buy time; a sell can report the pieces of lots it consumed; old checkpoints ask for a refold."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from contracts.portfolios import CostBasisMethod, Side
from portfolio.domain import Ledger, Trade, replay_ledger
from portfolio.domain.cost_basis import UNKNOWN_BUY_TIME, CostBasisBook, LotPiece

JAN = datetime(2023, 1, 10, 9, tzinfo=UTC)
FEB = datetime(2023, 2, 10, 9, tzinfo=UTC)
MAR = datetime(2023, 3, 10, 9, tzinfo=UTC)


def book_of(method: CostBasisMethod) -> CostBasisBook:
    book = CostBasisBook(method)
    book.add(1, D("1"), D("40000"), JAN)
    book.add(2, D("1"), D("60000"), FEB)
    book.add(3, D("2"), D("100000"), MAR)
    return book


@pytest.mark.parametrize(("method", "expected"), [
    (CostBasisMethod.FIFO, [LotPiece(1, JAN, D("1"), D("40000")), LotPiece(2, FEB, D("0.5"), D("30000"))]),
    (CostBasisMethod.LIFO, [LotPiece(3, MAR, D("1.5"), D("75000"))]),
    (CostBasisMethod.HIFO, [LotPiece(2, FEB, D("1"), D("60000")), LotPiece(3, MAR, D("0.5"), D("25000"))]),
])
def test_a_sell_reports_the_pieces_of_the_lots_it_consumed(method, expected) -> None:
    book, pieces = book_of(method), []
    removed = book.remove(D("1.5"), pieces)
    assert pieces == expected
    assert removed == sum(p.cost_usd for p in pieces)
    assert sum(p.amount_btc for p in pieces) == D("1.5")


def test_removing_without_a_list_takes_the_same_cost_and_average_reports_no_pieces() -> None:
    plain, reported = book_of(CostBasisMethod.FIFO), book_of(CostBasisMethod.FIFO)
    assert plain.remove(D("2.25")) == reported.remove(D("2.25"), [])
    assert plain.to_json() == reported.to_json()
    average, pieces = book_of(CostBasisMethod.AVERAGE), []
    assert average.remove(D("1"), pieces) == D("50000")
    assert pieces == []


def test_lots_keep_their_buy_time_through_a_checkpoint() -> None:
    buys = [Trade(f"b{n}", Side.BUY, D("0.5"), at, D("1"), D("30000"), n) for n, at in enumerate([JAN, FEB, MAR])]
    ledger, _ = replay_ledger(CostBasisMethod.LIFO, buys)
    stored = Ledger.from_json(ledger.to_json())
    assert [lot.acquired_at for lot in stored.book.open_lots()] == [JAN, FEB, MAR]
    assert not stored.needs_refold
    assert stored.copy().to_json() == ledger.to_json()


def test_a_checkpoint_written_before_lots_had_buy_times_is_read_and_asks_for_a_refold() -> None:
    old = {"method": "fifo", "holdings_btc": "1.5", "cost_basis_usd": "45000",
           "lots": [[1, "1", "30000"], [2, "0.5", "15000"]]}
    book = CostBasisBook.from_json(old)
    assert book.buy_times_missing
    assert [lot.acquired_at for lot in book.lots] == [UNKNOWN_BUY_TIME, UNKNOWN_BUY_TIME]
    assert book.remove(D("1")) == D("30000")  # still readable: its figures are right, only the buy times are lost
    assert CostBasisBook.from_json(book.to_json()).buy_times_missing  # the mark survives a store and a read
    assert book.copy().buy_times_missing
    assert not CostBasisBook.from_json({**old, "lots": []}).buy_times_missing
