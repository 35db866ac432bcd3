"""The tax report's rules: the holding term, pro-rata shares, the year in UTC, the method and the Form 8949 CSV."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from contracts.portfolios import CostBasisMethod, Side, TaxTerm
from portfolio.domain import DomainError, Trade, report_method, tax_report_csv, tax_year
from portfolio.domain.tax_report import holding_term, one_year_after


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def trade(n: int, side: str, amount: str, at: str, price: str, fee: str = "0") -> Trade:
    return Trade(f"t{n}", Side(side), D(amount), datetime.fromisoformat(at), D(fee), D(price), n)


@pytest.mark.parametrize(("bought", "sold", "term"), [
    ("2023-03-15T10:00", "2024-03-15T23:59", TaxTerm.SHORT),   # the anniversary is still short
    ("2023-03-15T10:00", "2024-03-16T00:00", TaxTerm.LONG),    # the day after is long
    ("2023-12-31T23:30", "2025-01-01T00:10", TaxTerm.LONG),
    ("2024-02-29T12:00", "2025-02-28T12:00", TaxTerm.SHORT),
    ("2024-02-29T12:00", "2025-03-01T12:00", TaxTerm.SHORT),   # a leap-day lot reaches its year on 1 March
    ("2024-02-29T12:00", "2025-03-02T00:00", TaxTerm.LONG),
    ("2023-02-28T12:00", "2024-02-29T00:00", TaxTerm.LONG),    # bought 28 Feb: 29 Feb of a leap year is later
    ("2023-05-01T00:00", "2023-06-01T00:00", TaxTerm.SHORT),
])
def test_long_term_only_after_the_utc_anniversary(bought, sold, term) -> None:
    assert holding_term(utc(bought), utc(sold)) is term


def test_the_term_compares_utc_dates_not_local_ones() -> None:
    # 2023-03-16 01:00 at UTC+5 is 2023-03-15 20:00 UTC: the buy's UTC date is the 15th
    bought = datetime(2023, 3, 16, 1, tzinfo=timezone(timedelta(hours=5)))
    assert holding_term(bought, utc("2024-03-16T00:30")) is TaxTerm.LONG
    # a sale at 2024-03-16 03:00 at UTC+5 is still the 15th in UTC: the anniversary, short
    assert holding_term(utc("2023-03-15T12:00"), datetime(2024, 3, 16, 3, tzinfo=timezone(timedelta(hours=5)))) \
        is TaxTerm.SHORT
    assert one_year_after(utc("2024-02-29T00:00").date()) == utc("2025-03-01T00:00").date()


def test_a_sell_over_two_lots_shares_proceeds_by_amount_and_cost_by_lot() -> None:
    trades = [trade(1, "buy", "1", "2023-01-10T12:00+00:00", "20000", fee="10"),
              trade(2, "buy", "1", "2024-01-10T12:00+00:00", "40000", fee="10"),
              trade(3, "sell", "1.5", "2024-06-01T12:00+00:00", "60000", fee="30")]
    report = tax_year(trades, CostBasisMethod.FIFO, 2024)
    first, second = report.lines
    # proceeds 1.5 × 60,000 − 30 = 89,970, two thirds and one third
    assert (first.amount_btc, first.proceeds_usd, first.cost_basis_usd, first.term) == (
        D("1"), D("59980"), D("20010"), TaxTerm.LONG)
    assert (second.amount_btc, second.proceeds_usd, second.cost_basis_usd, second.term) == (
        D("0.5"), D("29990"), D("20005"), TaxTerm.SHORT)
    assert first.acquired_at == utc("2023-01-10T12:00") and first.sold_at == utc("2024-06-01T12:00")
    totals = report.totals
    assert (totals.proceeds_usd, totals.cost_basis_usd, totals.gain_usd) == (D("89970"), D("40015"), D("49955"))
    assert (totals.long_term_gain_usd, totals.short_term_gain_usd) == (D("39970"), D("9985"))
    hifo = tax_year(trades, CostBasisMethod.HIFO, 2024)
    assert [(line.amount_btc, line.cost_basis_usd) for line in hifo.lines] == [(D("1"), D("40010")),
                                                                               (D("0.5"), D("10005"))]


def test_shares_that_do_not_divide_evenly_still_add_up_to_the_proceeds() -> None:
    trades = [trade(n, "buy", "0.1", f"2024-01-0{n}T00:00+00:00", "30000") for n in range(1, 4)]
    trades.append(trade(4, "sell", "0.3", "2024-02-01T00:00+00:00", "33333.33", fee="0.01"))
    lines = tax_year(trades, CostBasisMethod.LIFO, 2024).lines
    assert [line.acquired_at.day for line in lines] == [3, 2, 1]
    assert sum(line.proceeds_usd for line in lines) == D("0.3") * D("33333.33") - D("0.01")
    assert all(abs(line.proceeds_usd * 3 - D("9999.989")) < D("1E-20") for line in lines)


def test_only_sells_inside_the_utc_year_are_reported_and_earlier_sells_still_use_lots() -> None:
    trades = [trade(1, "buy", "1", "2023-06-01T00:00+00:00", "20000"),
              trade(2, "buy", "1", "2023-07-01T00:00+00:00", "30000"),
              trade(3, "sell", "0.5", "2023-12-31T23:59+00:00", "40000"),
                        # 2024-01-01 00:30 at UTC+1 is 2023-12-31 23:30 in UTC
              trade(4, "sell", "0.25", "2024-01-01T00:30+01:00", "40000"),
              trade(5, "sell", "0.5", "2024-01-01T00:00+00:00", "50000"),
              trade(6, "sell", "0.25", "2025-01-01T00:00+00:00", "50000")]
    lines = tax_year(trades, CostBasisMethod.FIFO, 2024).lines
    assert [(line.sell_transaction_id, line.amount_btc, line.cost_basis_usd) for line in lines] == [
        ("t5", D("0.25"), D("5000")), ("t5", D("0.25"), D("7500"))]
    assert [line.sell_transaction_id for line in tax_year(trades, CostBasisMethod.FIFO, 2023).lines] == ["t4", "t3"]


def test_uncovered_and_unpriced_sells_are_left_out_and_pending_sells_are_counted() -> None:
    trades = [trade(1, "buy", "1", "2024-01-01T00:00+00:00", "20000"),
              trade(2, "sell", "2", "2024-02-01T00:00+00:00", "30000"),  # more than held: no figures
              Trade("t3", Side.SELL, D("0.5"), utc("2024-03-01T00:00"), D(0), None, 3),
              trade(4, "sell", "1", "2024-04-01T00:00+00:00", "30000")]
    report = tax_year(trades, CostBasisMethod.FIFO, 2024,
                      pending_sells_at=[utc("2024-03-01T00:00"), utc("2023-03-01T00:00")])
    assert [line.sell_transaction_id for line in report.lines] == ["t4"]
    assert report.pending_sells == 1


def test_the_method_defaults_to_the_portfolios_lot_method_else_fifo_and_average_is_refused() -> None:
    assert report_method(None, CostBasisMethod.HIFO) is CostBasisMethod.HIFO
    assert report_method(None, CostBasisMethod.AVERAGE) is CostBasisMethod.FIFO
    assert report_method(CostBasisMethod.LIFO, CostBasisMethod.FIFO) is CostBasisMethod.LIFO
    with pytest.raises(DomainError, match="average cost has no lots") as refused:
        report_method(CostBasisMethod.AVERAGE, CostBasisMethod.FIFO)
    assert refused.value.details == {"field": "method"}


def test_csv_has_the_form_8949_columns_utc_dates_and_dollars_and_cents() -> None:
    trades = [trade(1, "buy", "0.3", "2022-12-31T23:30:00-02:00", "16000.555", fee="1.005"),  # 2023-01-01 UTC
              trade(2, "buy", "1", "2024-03-01T00:00+00:00", "60000"),
              trade(3, "sell", "0.8", "2024-03-05T22:00:00-05:00", "70000.125", fee="7")]  # 2024-03-06 UTC
    text = tax_report_csv(tax_year(trades, CostBasisMethod.FIFO, 2024))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Description", "Date acquired", "Date sold", "Proceeds", "Cost basis", "Gain or loss", "Term"]
    # proceeds 0.8 × 70,000.125 − 7 = 55,993.10, shared 3/8 and 5/8
    assert rows[1] == ["0.30000000 BTC", "01/01/2023", "03/06/2024", "20997.41", "4801.17", "16196.24", "Long-term"]
    assert rows[2] == ["0.50000000 BTC", "03/01/2024", "03/06/2024", "34995.69", "30000.00", "4995.69", "Short-term"]
    assert len(rows) == 3
    assert tax_report_csv(tax_year([], CostBasisMethod.FIFO, 2024)).splitlines() == [",".join(rows[0])]
