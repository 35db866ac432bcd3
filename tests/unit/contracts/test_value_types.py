"""The one decimal grammar, the field ranges and the time range of the contracts, against hostile input."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from contracts.types import (
    MAX_DIGITS_EACH_SIDE,
    MAX_UNIX_SECONDS,
    BtcAmount,
    InvalidValue,
    TimeOutOfRange,
    UsdFee,
    UsdGoal,
    UsdPrice,
    decimal_text,
    from_unix_seconds,
    parse_decimal,
    utc_time,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from contracts import ContractError, portfolios, prices

AT = datetime(2024, 1, 1, tzinfo=UTC)
HOSTILE_DECIMALS = ["1e-16384", "1e-999999", "1_000", "١٢", "²", "1.5\n", " 1", "1 ", "NaN", "-Infinity", "inf",
                    "0x10", "1,5", "", "+", ".", "1e", "--1", "1" * 300, "1e99999"]


def record(**fields: object) -> bytes:
    body = {"owner_id": "u", "portfolio_id": "p", "side": "buy", "amount_btc": "1", "at": "2024-01-01T00:00:00Z",
            **fields}
    return json.dumps(body).encode()


@pytest.mark.parametrize("text", HOSTILE_DECIMALS)
def test_text_outside_the_grammar_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(InvalidValue, match="plain decimal form|out of range"):
        parse_decimal(text)


@given(st.text(max_size=60))
def test_any_text_is_either_refused_or_a_bounded_finite_decimal(text: str) -> None:
    try:
        value = parse_decimal(text)
    except InvalidValue:
        return
    assert value.is_finite() and text.isascii()
    assert len(decimal_text(value)) <= 2 * MAX_DIGITS_EACH_SIDE + 2


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-10**20, max_value=10**20))
def test_every_value_we_write_reads_back_exactly(value: Decimal) -> None:
    assert parse_decimal(decimal_text(value)) == value


@given(st.integers(min_value=-MAX_DIGITS_EACH_SIDE - 50, max_value=MAX_DIGITS_EACH_SIDE + 50))
def test_the_exponent_is_bounded_on_both_sides(exponent: int) -> None:
    text = f"1e{exponent}"
    if -MAX_DIGITS_EACH_SIDE <= exponent < MAX_DIGITS_EACH_SIDE:
        assert parse_decimal(text) == Decimal(text)
    else:
        with pytest.raises(InvalidValue, match="out of range"):
            parse_decimal(text)


def test_negative_zero_is_zero() -> None:
    assert decimal_text(parse_decimal("-0")) == "0" and decimal_text(parse_decimal("-0.00")) == "0.00"
    command = portfolios.RecordTransaction.from_json(record(fee_usd="-0"))
    assert json.loads(command.to_json())["fee_usd"] == "0"


@pytest.mark.parametrize("text", HOSTILE_DECIMALS)
def test_a_command_refuses_hostile_money_on_every_money_field(text: str) -> None:
    for field in ("amount_btc", "fee_usd", "price_usd"):
        with pytest.raises(ContractError, match=field):
            portfolios.RecordTransaction.from_json(record(**{field: text}))


@pytest.mark.parametrize(("kind", "value", "sentence"), [
    (BtcAmount, "0", "more than 0 BTC"), (BtcAmount, "-1", "more than 0 BTC"),
    (BtcAmount, "21000000.00000001", "21,000,000"), (BtcAmount, "0.000000001", "8 decimals"),
    (UsdFee, "-0.01", "negative"), (UsdFee, "1.1e15", "10\\^15"), (UsdFee, "1e-29", "28 decimals"),
    (UsdPrice, "0", "positive"), (UsdPrice, "2e15", "positive"), (UsdGoal, "-5", "positive"),
    (BtcAmount, 1, "never as a float"), (UsdPrice, True, "never as a float"),
])
def test_the_field_types_hold_the_spec_ranges(kind: object, value: object, sentence: str) -> None:
    with pytest.raises(ValidationError, match=sentence):
        TypeAdapter(kind).validate_python(value)


@pytest.mark.parametrize(("note", "sentence"), [("a\u0000b", "control characters"), ("x" * 501, "500"),
                                                ("\u0085", "control characters")])
def test_a_note_is_plain_text_of_at_most_500_characters(note: str, sentence: str) -> None:
    with pytest.raises(ContractError, match=sentence):
        portfolios.RecordTransaction.from_json(record(note=note))


def test_the_largest_amount_and_the_smallest_are_accepted() -> None:
    for amount in ("21000000", "0.00000001", "2.1e7", "1E-8"):
        assert TypeAdapter(BtcAmount).validate_python(amount) == Decimal(amount)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
       st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59))
def test_any_aware_time_is_utc_in_range_or_refused_as_out_of_range(naive: datetime, offset_minutes: int) -> None:
    moment = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    try:
        converted = utc_time(moment)
    except TimeOutOfRange as error:
        assert "out of range" in str(error)
        return
    assert converted == moment and converted.tzinfo == UTC and converted.year >= 1970


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_unix_seconds_out_of_range_are_refused_not_overflowed(seconds: int) -> None:
    if 0 <= seconds <= MAX_UNIX_SECONDS:
        assert from_unix_seconds(seconds).timestamp() == seconds
    else:
        with pytest.raises(TimeOutOfRange, match="out of range"):
            from_unix_seconds(seconds)


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z",
                                99999999999999999999, "99999999999999999999", -1])
def test_times_out_of_range_are_refused_by_the_contracts(at: object) -> None:
    with pytest.raises(ContractError, match="out of range"):
        portfolios.RecordTransaction.from_json(record(at=at))
    with pytest.raises(ContractError, match="out of range"):
        portfolios.GetHistory.from_json(json.dumps({"owner_id": "u", "portfolio_id": "p", "start": at}))


def test_whole_numbers_are_unix_seconds_never_milliseconds() -> None:
    assert portfolios.RecordTransaction.from_json(record(at=99999999999)).at == datetime(5138, 11, 16, 9, 46, 39,
                                                                                         tzinfo=UTC)
    assert portfolios.RecordTransaction.from_json(record(at="1709287200")).at == datetime(2024, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("unix", [-1, MAX_UNIX_SECONDS + 1, 10**20, "1_000", "²", True])
def test_price_queries_refuse_unix_seconds_out_of_range(unix: object) -> None:
    with pytest.raises(ContractError, match="out of range|ASCII digits"):
        prices.PriceAtRequested.from_json(json.dumps({"at": unix}))
    with pytest.raises(ContractError, match="out of range|ASCII digits"):
        prices.PriceRangeRequested.from_json(json.dumps({"start": 0, "end": unix}))
