"""The tax report of a UTC year: each counted sell split into the lots it consumed, with gains and their term."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.portfolios import CostBasisMethod, TaxTerm

from portfolio.domain.cost_basis import CostBasisBook, LotPiece
from portfolio.domain.errors import DomainError
from portfolio.domain.trades import Trade, in_timeline_order

ZERO = Decimal(0)
CENT = Decimal("0.01")
FORM_8949_COLUMNS = ("Description", "Date acquired", "Date sold", "Proceeds", "Cost basis", "Gain or loss", "Term")
TERM_TEXT = {TaxTerm.SHORT: "Short-term", TaxTerm.LONG: "Long-term"}


@dataclass(frozen=True, slots=True)
class TaxLine:
    sell_transaction_id: str
    acquired_at: datetime
    sold_at: datetime
    amount_btc: Decimal
    proceeds_usd: Decimal
    cost_basis_usd: Decimal
    term: TaxTerm

    @property
    def gain_usd(self) -> Decimal:
        return self.proceeds_usd - self.cost_basis_usd


@dataclass(frozen=True, slots=True)
class TaxTotals:
    proceeds_usd: Decimal
    cost_basis_usd: Decimal
    gain_usd: Decimal
    short_term_gain_usd: Decimal
    long_term_gain_usd: Decimal


@dataclass(frozen=True, slots=True)
class TaxYear:
    year: int
    method: CostBasisMethod
    lines: list[TaxLine]
    pending_sells: int

    @property
    def totals(self) -> TaxTotals:
        gains = {term: sum((line.gain_usd for line in self.lines if line.term is term), ZERO) for term in TaxTerm}
        return TaxTotals(sum((line.proceeds_usd for line in self.lines), ZERO),
                         sum((line.cost_basis_usd for line in self.lines), ZERO),
                         sum((line.gain_usd for line in self.lines), ZERO), gains[TaxTerm.SHORT], gains[TaxTerm.LONG])


def report_method(requested: CostBasisMethod | None, portfolio_method: CostBasisMethod) -> CostBasisMethod:
    """The requested lot method, else the portfolio's when it is one, else fifo; average cost has no lots."""
    if requested is None:
        return CostBasisMethod.FIFO if portfolio_method is CostBasisMethod.AVERAGE else portfolio_method
    if requested is CostBasisMethod.AVERAGE:
        raise DomainError("A tax report matches every sell to the lots it used, and average cost has no lots; "
                          "choose fifo, lifo or hifo.", {"field": "method"})
    return requested


def one_year_after(day: date) -> date:
    """The same date a year later; 29 February reaches its year on 1 March."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def holding_term(acquired_at: datetime, sold_at: datetime) -> TaxTerm:
    """Long when the sell's UTC date is later than the buy's UTC date plus one year (the anniversary is short)."""
    bought, sold = acquired_at.astimezone(UTC).date(), sold_at.astimezone(UTC).date()
    return TaxTerm.LONG if sold > one_year_after(bought) else TaxTerm.SHORT


def sell_lines(sell: Trade, pieces: list[LotPiece]) -> list[TaxLine]:
    """One line per lot piece: the sell's proceeds shared by amount (the last piece takes what the others left,
    so the lines add up to the proceeds), each piece's own cost."""
    proceeds, lines, shared = sell.proceeds_usd, [], ZERO
    for n, piece in enumerate(pieces, start=1):
        share = proceeds - shared if n == len(pieces) else proceeds * piece.amount_btc / sell.amount_btc
        shared += share
        lines.append(TaxLine(sell.transaction_id, piece.acquired_at, sell.at, piece.amount_btc, share,
                             piece.cost_usd, holding_term(piece.acquired_at, sell.at)))
    return lines


def tax_year(trades: Iterable[Trade], method: CostBasisMethod, year: int,
             pending_sells_at: Iterable[datetime] = ()) -> TaxYear:
    """Walk the priced trades in timeline order with a book of `method`, and split each sell of the UTC `year`
    into the lot pieces it consumed. A sell the holdings don't cover is left out, as the ledger leaves it out of
    every figure; `pending_sells_at` (sells waiting for a price) are only counted."""
    book, lines = CostBasisBook(method), []
    for trade in in_timeline_order([t for t in trades if t.price_usd is not None]):
        traded_in = trade.at.astimezone(UTC).year
        if traded_in > year:
            break
        if trade.is_buy and trade.is_transfer:  # lots moved in keep their cost and buy time
            for lot in trade.lots:
                book.add(trade.sequence, lot.amount_btc, lot.cost_usd, lot.acquired_at)
        elif trade.is_buy:
            book.add(trade.sequence, trade.amount_btc, trade.cost_usd, trade.at)
        elif book.covers(trade.amount_btc):
            pieces: list[LotPiece] | None = [] if traded_in == year and not trade.is_transfer else None
            book.remove(trade.amount_btc, pieces)  # a transfer out takes its lots away but sells nothing
            if pieces:
                lines.extend(sell_lines(trade, pieces))
    pending = sum(1 for at in pending_sells_at if at.astimezone(UTC).year == year)
    return TaxYear(year, method, lines, pending)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def tax_report_csv(report: TaxYear) -> str:
    """The lines in the column order of IRS Form 8949, dates as MM/DD/YYYY in UTC, money in dollars and cents;
    as on the form, the gain of a row is its proceeds less its cost basis as written."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FORM_8949_COLUMNS)
    for line in report.lines:
        proceeds, cost = cents(line.proceeds_usd), cents(line.cost_basis_usd)
        writer.writerow((f"{line.amount_btc:.8f} BTC", line.acquired_at.astimezone(UTC).strftime("%m/%d/%Y"),
                         line.sold_at.astimezone(UTC).strftime("%m/%d/%Y"), f"{proceeds:f}", f"{cost:f}",
                         f"{proceeds - cost:f}", TERM_TEXT[line.term]))
    return out.getvalue()
