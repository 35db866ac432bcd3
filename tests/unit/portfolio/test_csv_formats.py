"""Reading transaction CSV files: per-row errors with line numbers, and Coinbase's export."""

from datetime import UTC, datetime
from decimal import Decimal

from contracts.portfolios import Side
from portfolio.domain import ParsedRow, RowError, RowSkipped, parse_transactions_csv

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
