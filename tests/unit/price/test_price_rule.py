"""The pure price rule and candle CSV reading."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from price.domain import CandleRow, CsvRowError, PriceDecision, decide_price, hour_of, parse_candle_csv

ROW = CandleRow(1704067200, Decimal("42288.58"), Decimal("42543.64"), Decimal("42261.58"), Decimal("42452.66"),
                Decimal("379.19725348"))


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_hour_of_is_the_start_of_the_containing_hour(t: int) -> None:
    hour = hour_of(t)
    assert hour % 3600 == 0 and hour <= t < hour + 3600


def test_a_stored_hour_resolves_to_its_candle() -> None:
    verdict = decide_price(1704067200 + 1800, now=1800000000, first_hour=1704063600, candle=ROW)
    assert verdict.decision is PriceDecision.RESOLVED and verdict.candle.open == Decimal("42288.58")


def test_before_future_and_gap_decisions() -> None:
    assert decide_price(1000, 1800000000, 1704063600, None).decision is PriceDecision.BEFORE_DATA
    assert decide_price(1800000001, 1800000000, 1704063600, None).decision is PriceDecision.IN_FUTURE
    assert decide_price(1704070800, 1800000000, 1704063600, None).decision is PriceDecision.FETCH
    assert decide_price(1704070800, 1800000000, None, None).decision is PriceDecision.BEFORE_DATA


def test_csv_reads_the_shared_columns_exactly() -> None:
    lines = ["date,unix,low,high,open,close,volume,vol_fiat\n",
             "2024-01-01 00:00:00+00:00,1704067200,42261.58,42543.64,42288.58,42452.66,379.19725348,1\n"]
    assert list(parse_candle_csv(lines)) == [ROW]


def test_csv_with_unknown_columns_is_refused_on_line_1() -> None:
    (error,) = list(parse_candle_csv(["a,b\n", "1,2\n"]))
    assert isinstance(error, CsvRowError) and error.line == 1 and "unix" in error.message


def test_csv_negative_or_inverted_prices_are_row_errors() -> None:
    lines = ["time,open,high,low,close,volumefrom\n", "3600,-1,2,1,1,1\n", "7200,1,1,2,1,1\n"]
    errors = list(parse_candle_csv(lines))
    assert [(e.line, "≥ 0" in e.message or "above" in e.message) for e in errors] == [(2, True), (3, True)]


def test_known_at_marks_the_hour_still_trading_provisional_and_drops_hours_not_begun() -> None:
    from dataclasses import replace

    from price.domain import known_at

    hour = ROW.hour
    rows = [replace(ROW, hour=hour + i * 3600) for i in range(4)]
    now = hour + 2 * 3600 + 1
    settled = known_at(rows, now)
    assert [(r.hour, r.provisional) for r in settled] == [(hour, False), (hour + 3600, False), (hour + 7200, True)]
    assert known_at(rows, hour + 3600)[0].provisional is False, "an hour is finished the second it ends"
