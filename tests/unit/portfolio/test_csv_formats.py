"""Reading transaction CSV files: per-row errors with line numbers, and Coinbase's export."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from contracts.portfolios import MAX_IMPORT_ROWS, Side
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import DomainError, ParsedRow, RowError, RowSkipped, parse_transactions_csv
from portfolio.domain.csv_formats import GENERIC_COLUMNS

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_generic_rows_with_unix_and_iso_times_and_optional_columns() -> None:
    fmt, rows = parse_transactions_csv(
        "side,amount_btc,at,fee_usd,price_usd,note\n"
        "buy,0.5,2024-01-01T00:30:00Z,1.5,,first\n"
        "sell,0.1,1704153600,,45000.5,\n", NOW)
    assert fmt == "generic"
    assert rows == [
        ParsedRow(2, Side.BUY, Decimal("0.5"), datetime(2024, 1, 1, 0, 30, tzinfo=UTC), Decimal("1.5"), None, "first"),
        ParsedRow(3, Side.SELL, Decimal("0.1"), datetime(2024, 1, 2, tzinfo=UTC), Decimal(0), Decimal("45000.5"), None),
    ]


def test_each_bad_row_gets_its_line_and_a_sentence() -> None:
    _, rows = parse_transactions_csv(
        "side,amount_btc,at\n"
        "hold,1,2024-01-01T00:00:00Z\n"
        "buy,-1,2024-01-01T00:00:00Z\n"
        "buy,1,yesterday\n"
        "buy,1,2030-01-01T00:00:00Z\n", NOW)
    assert [(r.line, type(r)) for r in rows] == [(2, RowError), (3, RowError), (4, RowError), (5, RowError)]
    assert "buy or sell" in rows[0].message
    assert "more than 0" in rows[1].message
    assert "ISO 8601" in rows[2].message
    assert "future" in rows[3].message


def test_unknown_header_is_one_clear_error() -> None:
    fmt, rows = parse_transactions_csv("when,what\n1,2\n", NOW)
    assert fmt == "unknown" and rows[0].line == 1 and "side,amount_btc,at" in rows[0].message


def test_coinbase_export_with_preamble_reads_btc_trades_and_skips_the_rest() -> None:
    text = (
        '"You can use this transaction report to inform your likely tax obligations."\n'
        "Transactions\n"
        "User,someone@example.com,abc\n"
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,"
        "Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
        'a1,2024-03-01 10:00:00 UTC,Buy,BTC,0.01,USD,"$62,000.00",$620.00,$625.00,$5.00,Bought 0.01 BTC\n'
        "a2,2024-03-02 10:00:00 UTC,Send,BTC,0.005,USD,$63000,,,,to cold storage\n"
        "a3,2024-03-03 10:00:00 UTC,Advanced Trade Sell,BTC,0.002,USD,$64000,$128,$127.5,$0.50,\n"
        "a4,2024-03-03 11:00:00 UTC,Buy,ETH,1,USD,$3000,$3000,$3010,$10,\n")
    fmt, rows = parse_transactions_csv(text, NOW)
    assert fmt == "coinbase"
    assert rows[0] == ParsedRow(5, Side.BUY, Decimal("0.01"), datetime(2024, 3, 1, 10, tzinfo=UTC), Decimal("5.00"),
                                Decimal("62000.00"), "Bought 0.01 BTC")
    assert isinstance(rows[1], RowSkipped) and rows[1].line == 6 and "Send" in rows[1].reason
    assert rows[2].side == Side.SELL and rows[2].fee_usd == Decimal("0.50")
    assert isinstance(rows[3], RowSkipped)


# ---------------------------------------------------------------- hostile files: row errors, never an exception

COINBASE_HEADER = ("ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,"
                   "Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n")


def generic(*rows: str) -> list:
    return parse_transactions_csv("side,amount_btc,at,fee_usd,price_usd,note\n" + "".join(r + "\n" for r in rows),
                                  NOW)[1]


@pytest.mark.parametrize(("row", "sentence"), [
    ("buy,1,99999999999999999999,,,", "out of range"),
    ("buy,1,²,,,", "not ISO 8601"),
    ("buy,1,٢٠٢٤-01-01T00:00:00Z,,,", "not ISO 8601"),
    ("buy,1,0001-01-01T00:00:00+01:00,,,", "out of range"),
    ("buy,1,9999-12-31T23:59:59-14:00,,,", "out of range"),
    ("buy,1e-16384,2024-01-01T00:00:00Z,,,", "plain decimal form"),
    ("buy,1e-999999,2024-01-01T00:00:00Z,,,", "plain decimal form"),
    ("buy,1_000,2024-01-01T00:00:00Z,,,", "plain decimal form"),
    ("buy,١,2024-01-01T00:00:00Z,,,", "plain decimal form"),
    ("buy,NaN,2024-01-01T00:00:00Z,,,", "plain decimal form"),
    ("buy,1,2024-01-01T00:00:00Z,\"1,5\",,", "thousands"),
    ("buy,1,2024-01-01T00:00:00Z,5 EUR,,", "EUR, not"),
    ("buy,1,2024-01-01T00:00:00Z,,1e16,", "positive amount of USD"),
    ("buy,1,2024-01-01T00:00:00Z,,,\"a\x00b\"", "control characters"),
    ("buy,1,2024-01-01T00:00:00Z,,,\"two\nlines\"", "control characters"),
    ("buy,1,2024-01-01T00:00:00Z,,," + "n" * 501, "500 characters"),
    ("buy,1,2024-01-01T00:00:00Z,,," + "n" * 2000, "longer than 1,000"),
    ("buy,1,2024-01-01T00:00:00Z,,,\"" + "n" * 200_000 + "\"", "longer than 1,000"),
])
def test_a_hostile_row_is_a_row_error_with_its_line(row: str, sentence: str) -> None:
    rows = generic("buy,1,2024-01-01T00:00:00Z,,,", row, "sell,1,2024-01-02T00:00:00Z,,,")
    assert isinstance(rows[0], ParsedRow) and isinstance(rows[2], ParsedRow), rows
    assert isinstance(rows[1], RowError) and rows[1].line == 3 + row.count("\n"), rows[1]
    assert sentence in rows[1].message


def test_exchange_decorations_are_read_and_negative_zero_is_zero() -> None:
    rows = generic('buy,0.5 BTC,2024-01-01T00:00:00Z,"$1,234.50",62000 USDT,', "buy,1,2024-01-01T00:00:00Z,-0,,")
    assert (rows[0].amount_btc, rows[0].fee_usd, rows[0].price_usd) == (Decimal("0.5"), Decimal("1234.50"),
                                                                        Decimal(62000))
    assert str(rows[1].fee_usd) == "0"


def test_a_file_with_too_many_rows_is_refused_as_a_whole() -> None:
    with pytest.raises(DomainError, match="more than 50,000 rows"):
        generic(*["buy,1,2024-01-01T00:00:00Z,,,"] * (MAX_IMPORT_ROWS + 1))
    assert len(generic(*["buy,1,2024-01-01T00:00:00Z,,,"] * 3, "", "")) == 3  # blank lines are not rows


def test_a_coinbase_trade_priced_in_another_currency_is_a_row_error_that_says_so() -> None:
    text = (COINBASE_HEADER +
            "a1,2024-03-01 10:00:00 UTC,Buy,BTC,0.01,EUR,€57000.00,€570.00,€575.00,€5.00,Bought 0.01 BTC\n"
            "a2,2024-03-01 11:00:00 UTC,Buy,BTC,0.01,USDC,57000,570,575,5,\n"
            "a3,2024-03-01 12:00:00 UTC,Buy,BTC,0.01,,57000,570,575,5,\n")
    fmt, rows = parse_transactions_csv(text, NOW)
    assert fmt == "coinbase"
    assert isinstance(rows[0], RowError) and rows[0].line == 2 and "priced in EUR" in rows[0].message
    assert isinstance(rows[1], ParsedRow) and rows[1].price_usd == Decimal(57000)
    assert isinstance(rows[2], RowError) and "no currency" in rows[2].message


def test_an_older_coinbase_export_is_checked_on_its_spot_price_currency() -> None:
    text = ("Timestamp,Transaction Type,Asset,Quantity Transacted,Spot Price Currency,Spot Price at Transaction,"
            "Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
            "2024-03-01T10:00:00Z,Buy,BTC,0.01,GBP,50000,500,505,5,\n")
    rows = parse_transactions_csv(text, NOW)[1]
    assert isinstance(rows[0], RowError) and "priced in GBP" in rows[0].message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(max_size=30), min_size=1, max_size=7), max_size=6))
def test_any_file_gives_one_result_per_row_and_never_an_exception(table: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out).writerows([list(GENERIC_COLUMNS), *table])
    _, rows = parse_transactions_csv(out.getvalue(), NOW)
    assert all(isinstance(r, ParsedRow | RowError | RowSkipped) for r in rows)
    lines = [r.line for r in rows]
    assert lines == sorted(set(lines))
