"""Exchange exports read as SPEC's table says: the trades with exact amounts, fees, prices and times, every other
row skipped with its reason, and trades in other currencies as row errors with their lines."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from contracts.portfolios import IMPORT_FORMATS, MAX_IMPORT_ROWS, Side
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import DomainError, ParsedRow, RowError, RowSkipped, parse_transactions_csv
from portfolio.domain.exchanges import EXCHANGES

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIXTURES = Path(__file__).parents[2] / "fixtures" / "exchanges"
EUR_ERROR = "This trade is priced in EUR; only USD prices (or USDT, USDC, FDUSD, BUSD) can be imported for now."


def buy(line: int, amount: str, at: datetime, fee: str, price: str, note: str | None = None) -> ParsedRow:
    return ParsedRow(line, Side.BUY, Decimal(amount), at, Decimal(fee), Decimal(price), note)


def sell(line: int, amount: str, at: datetime, fee: str, price: str, note: str | None = None) -> ParsedRow:
    return ParsedRow(line, Side.SELL, Decimal(amount), at, Decimal(fee), Decimal(price), note)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def read(name: str) -> tuple[str, list]:
    return parse_transactions_csv((FIXTURES / name).read_text(encoding="utf-8"), NOW)


def test_coinbase_with_preamble_reads_buys_and_negative_sells_and_skips_sends_and_other_assets() -> None:
    assert read("coinbase.csv") == ("coinbase", [
        buy(6, "0.01", utc(2024, 3, 1, 12), "5.99", "62000", "Bought 0.01 BTC for $625.99 USD"),
        RowSkipped(7, "Send of BTC is not a BTC buy or sell"),
        sell(8, "0.002", utc(2024, 3, 5, 17, 45, 10), "0.79", "66100.50", "Sold 0.002 BTC"),
        RowSkipped(9, "Buy of ETH is not a BTC buy or sell"),
        RowError(10, EUR_ERROR),
        buy(11, "0.0015", utc(2024, 3, 8, 11), "0.60", "67000"),
    ])


def test_kraken_old_ledgers_pair_rows_by_refid_with_a_usd_fee_and_a_btc_fee() -> None:
    assert read("kraken-ledgers-old.csv") == ("kraken", [
        RowSkipped(2, "deposit of ZUSD is not a BTC buy or sell"),
        RowSkipped(3, "the USD side of the BTC trade on line 4"),
        # 4,500 USD for 0.1 BTC with an 11.70 USD fee
        buy(4, "0.1", utc(2024, 1, 3, 10), "11.70", "45000"),
        # 0.05 BTC sold for 2,200 USD with a 0.00005 BTC fee: 0.05005 BTC left the account, the fee is 2.20 USD
        sell(5, "0.05005", utc(2024, 1, 4, 11, 30), "2.20", "44000"),
        RowSkipped(6, "the USD side of the BTC trade on line 5"),
        RowSkipped(7, "trade of XETH is not a BTC buy or sell"),
        RowSkipped(8, "trade of ZUSD is not a BTC buy or sell"),
        RowSkipped(9, "withdrawal of XXBT is not a BTC buy or sell"),
        RowError(10, EUR_ERROR),
        RowSkipped(11, "the EUR side of the BTC trade on line 10"),
    ])


def test_kraken_new_ledgers_with_quoted_values_read_spend_receive_pairs_and_stablecoins() -> None:
    fmt, rows = read("kraken-ledgers-new.csv")
    assert fmt == "kraken"
    assert rows[:6] == [
        RowSkipped(2, "the USD side of the BTC trade on line 3"),
        buy(3, "0.02", datetime(2024, 2, 10, 16, 20, 31, 512300, tzinfo=UTC), "15", "50000"),
        # bought 0.02 BTC for 1,040 USD, 0.00004 BTC of it the fee: 0.01996 BTC held, 2.08 USD fee
        buy(4, "0.01996", utc(2024, 2, 11, 8), "2.08", "52000"),
        RowSkipped(5, "the USD side of the BTC trade on line 4"),
        sell(6, "0.01", utc(2024, 2, 12, 9, 30), "0.85", "53000"),
        RowSkipped(7, "the USDT side of the BTC trade on line 6"),
    ]
    assert rows[6] == RowSkipped(8, "earn of ETH is not a BTC buy or sell")
    assert isinstance(rows[7], RowError) and rows[7].line == 9 and "one BTC row and one money row" in rows[7].message
    assert str(rows[1].price_usd) == "50000"  # a plain number, not 5E+4


def test_strike_reads_purchases_and_sales_with_dollar_grouping_and_a_btc_fee() -> None:
    assert read("strike.csv") == ("strike", [
        buy(2, "0.02206126", utc(2024, 1, 2, 15, 4, 5), "0.99", "45328.32"),
        RowSkipped(3, "Deposit of USD is not a BTC buy or sell"),
        RowSkipped(4, "Withdrawal of BTC is not a BTC buy or sell"),
        sell(5, "0.02", utc(2024, 4, 1, 10), "6.90", "68990"),
        # Strike's Amount BTC already is what the account gained; the 0.000001 BTC fee counts as 0.071 USD
        buy(6, "0.0007", utc(2024, 5, 20, 11, 11, 11), "0.071", "71000", "Recurring buy"),
    ])


def test_river_prices_a_buy_as_sent_over_received_and_a_sell_as_received_over_sent() -> None:
    assert read("river.csv") == ("river", [
        buy(2, "0.0234", utc(2024, 1, 15, 14), "0", str(Decimal("1000.00") / Decimal("0.02340000"))),
        RowSkipped(3, "Deposit of USD is not a BTC buy or sell"),
        sell(4, "0.01", utc(2024, 3, 10, 18, 45), "1.50", "69000"),
        RowSkipped(5, "Withdrawal of BTC is not a BTC buy or sell"),
        RowError(6, EUR_ERROR),
        RowSkipped(7, "Interest of BTC is not a BTC buy or sell"),
    ])


def test_swan_after_two_company_lines_reads_settled_purchases_only() -> None:
    assert read("swan.csv") == ("swan", [
        RowSkipped(4, "deposit of USD is not a BTC buy or sell"),
        buy(5, "0.00108054", utc(2024, 11, 16, 17, 30, 6), "0.99", "91628"),
        RowSkipped(6, "the purchase is pending, not settled"),
        RowSkipped(7, "the purchase is canceled, not settled"),
        RowSkipped(8, "withdrawal of BTC is not a BTC buy or sell"),
    ])


def test_bitstamp_reads_market_limit_and_instant_trades_with_usd_and_btc_fees() -> None:
    assert read("bitstamp.csv") == ("bitstamp", [
        RowSkipped(2, "Deposit of USD is not a BTC buy or sell"),
        buy(3, "0.04", utc(2024, 1, 11, 9, 15, 42), "3.68", "46000"),
        sell(4, "0.01", utc(2024, 2, 20, 14), "1.04", "52000"),
        RowSkipped(5, "Instant Buy of ETH is not a BTC buy or sell"),
        RowError(6, EUR_ERROR),
        RowSkipped(7, "Withdrawal of BTC is not a BTC buy or sell"),
        buy(8, "0.00999", utc(2024, 3, 3, 12), "0.63", "63000"),
    ])


def test_binance_reads_usd_and_stablecoin_pairs_with_the_fee_in_btc_or_the_quote_asset() -> None:
    fmt, rows = read("binance.csv")
    assert fmt == "binance"
    assert rows[:5] == [
        buy(2, "0.00999", utc(2024, 1, 20, 10), "0.415", "41500"),
        sell(3, "0.005", utc(2024, 1, 21, 11), "0.21", "42000"),
        RowSkipped(4, "BUY of ETHUSDT is not a BTC buy or sell"),
        RowError(5, EUR_ERROR),
        buy(6, "0.0025", utc(2024, 1, 24, 14), "0.10", "40000"),
    ]
    assert isinstance(rows[5], RowError) and rows[5].line == 7 and "ETHBTC trades ETH for BTC" in rows[5].message
    assert isinstance(rows[6], RowError) and rows[6].line == 8 and "fee is paid in BNB" in rows[6].message


def test_a_fee_in_btc_is_charged_at_the_trades_own_price_and_leaves_the_btc_held() -> None:
    text = ("Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n"
            "2024-05-01 00:00:00,BTCUSD,BUY,60000,1BTC,60000USD,0.001BTC\n"
            "2024-05-02 00:00:00,BTCUSD,SELL,60000,1BTC,60000USD,0.001BTC\n")
    _, rows = parse_transactions_csv(text, NOW)
    assert rows == [buy(2, "0.999", utc(2024, 5, 1), "60", "60000"), sell(3, "1.001", utc(2024, 5, 2), "60", "60000")]
    for row in rows:  # the money that changed hands is what the file says, whichever way the fee is written
        flow = row.amount_btc * row.price_usd + (row.fee_usd if row.side is Side.BUY else -row.fee_usd)
        assert flow == Decimal(60000)


def test_row_errors_and_bad_values_keep_their_lines_and_say_what_is_wrong() -> None:
    text = ("\n\nDate,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,Tag\n"
            "2024-01-15 14:00:00,1000,USD,0.0234,BTC,1,GBP,Buy\n"
            "2024-01-15 14:00:00,1000,USD,\"0,5\",BTC,,,Buy\n"
            "2030-01-15 14:00:00,1000,USD,0.5,BTC,,,Buy\n"
            "2024-01-15 14:00:00,1000,USD,0.000000001,BTC,,,Buy\n")
    fmt, rows = parse_transactions_csv(text, NOW)
    assert fmt == "river" and [row.line for row in rows] == [4, 5, 6, 7]
    assert all(isinstance(row, RowError) for row in rows)
    assert "fee is paid in GBP" in rows[0].message
    assert "thousands" in rows[1].message
    assert "future" in rows[2].message
    assert "8 decimals" in rows[3].message


def test_strike_times_are_read_without_the_locale_and_bad_ones_are_row_errors() -> None:
    header = ("Reference,Date & Time (UTC),Transaction Type,Amount USD,Fee USD,Amount BTC,Fee BTC,BTC Price,"
              "Cost Basis (USD),Destination,Description,Transaction Hash,Note\n")
    _, rows = parse_transactions_csv(header + "r1,Dec 31 2024 23:59:59,Purchase,-10,,0.0001,,100000,,,,,\n"
                                              "r2,Feb 30 2024 10:00:00,Purchase,-10,,0.0001,,100000,,,,,\n"
                                              "r3,2024-01-01,Purchase,-10,,0.0001,,100000,,,,,\n", NOW)
    assert rows[0] == buy(2, "0.0001", utc(2024, 12, 31, 23, 59, 59), "0", "100000")
    assert isinstance(rows[1], RowError) and "not a date" in rows[1].message
    assert isinstance(rows[2], RowError) and "Jan 02 2024 15:04:05" in rows[2].message


def test_exchange_files_keep_the_row_and_field_limits() -> None:
    header = "txid,refid,time,type,subtype,aclass,asset,amount,fee,balance\n"
    deposit = "L1,R1,2024-01-02 09:15:00,deposit,,currency,ZUSD,5000,0,5000\n"
    _, rows = parse_transactions_csv(header + deposit + deposit.replace("5000,0", "5000," + "9" * 1001), NOW)
    assert isinstance(rows[0], RowSkipped) and rows[1] == RowError(3, "A field of this row is longer than 1,000 "
                                                                      "characters (or the row is not valid CSV).")
    with pytest.raises(DomainError, match="more than 50,000 rows"):
        parse_transactions_csv(header + deposit * (MAX_IMPORT_ROWS + 1), NOW)


def test_an_unknown_header_names_the_formats_that_are_read() -> None:
    fmt, rows = parse_transactions_csv("Date,Thing\n2024-01-01,1\n", NOW)
    assert fmt == "unknown" and len(rows) == 1 and rows[0].line == 1
    for name, title in IMPORT_FORMATS.items():
        assert name == "generic" or title in rows[0].message


def test_every_exchange_has_a_display_name_and_a_fixture() -> None:
    assert {exchange.name for exchange in EXCHANGES} | {"generic"} == set(IMPORT_FORMATS)
    read_formats = {read(path.name)[0] for path in FIXTURES.glob("*.csv")}
    assert read_formats == {exchange.name for exchange in EXCHANGES}


def header_of(exchange_name: str) -> list[str]:
    """The header line of the exchange's fixture."""
    exchange = next(e for e in EXCHANGES if e.name == exchange_name)
    for path in sorted(FIXTURES.glob("*.csv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = next(csv.reader([line]), [])
            if exchange.columns <= set(fields):
                return fields
    raise AssertionError(f"no fixture has a {exchange_name} header")


CELL = st.one_of(st.text(max_size=20), st.sampled_from([
    "", "BTC", "XXBT", "ZUSD", "USD", "USDT", "EUR", "Buy", "Sell", "buy", "trade", "spend", "receive", "Purchase",
    "Sale", "purchase", "settled", "Market", "BTCUSDT", "ETHBTC", "BUY", "SELL", "0.001BTC", "1,000.00", "$5",
    "-0.5", "2024-01-02 03:04:05", "Jan 02 2024 15:04:05", "2024-11-16 17:30:06+00", "1e999", "NaN", "R1"]))


@pytest.mark.parametrize("exchange", [exchange.name for exchange in EXCHANGES])
@settings(max_examples=80, deadline=None)
@given(preamble=st.lists(st.text(max_size=20), max_size=2), table=st.lists(st.lists(CELL, max_size=18), max_size=8))
def test_no_file_content_makes_a_parser_raise(exchange: str, preamble: list[str], table: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([[line] for line in preamble if line.strip()] + [header_of(exchange), *table])
    _, rows = parse_transactions_csv(out.getvalue(), NOW)
    assert all(isinstance(row, ParsedRow | RowError | RowSkipped) for row in rows)
    lines = [row.line for row in rows]
    assert lines == sorted(set(lines))
