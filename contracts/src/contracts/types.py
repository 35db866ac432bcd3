"""Value types every message uses: exact money in one strict decimal grammar, aware UTC times in a bounded range."""

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Ge, Le, MaxLen
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------- money and amounts

SATOSHI = Decimal("0.00000001")
MAX_BTC = Decimal(21_000_000)
"""The total supply: no amount of BTC can be larger."""
MAX_USD = Decimal(10) ** 15
"""A bound on any fee, price or goal a person can type; far above any real one."""
MAX_USD_DECIMALS = 28
"""As many decimals as our own Decimal arithmetic carries; finer input is noise."""

DECIMAL_GRAMMAR = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
"""The only text read as money: ASCII digits, an optional sign, fraction and a short exponent."""
MAX_DECIMAL_CHARS = 256
MAX_DIGITS_EACH_SIDE = 100
"""Digits before and after the point once written out: room for any figure we compute, while a value such as
1e-16384 (which Postgres' numeric refuses) or 1e-999999 (a megabyte once written out) is refused at the door."""


class InvalidValue(ValueError):
    """A value outside its grammar or its field's range; the message is a sentence saying which rule."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def bounded_decimal(value: Decimal) -> Decimal:
    """A finite value with at most MAX_DIGITS_EACH_SIDE digits on each side of the point; -0 becomes 0."""
    if not value.is_finite():
        raise InvalidValue("NaN and Infinity are not amounts of money.")
    integer_digits = max(value.adjusted() + 1, 0)
    fraction_digits = max(-value.as_tuple().exponent, 0)  # type: ignore[operator]  # finite: an int
    if integer_digits > MAX_DIGITS_EACH_SIDE or fraction_digits > MAX_DIGITS_EACH_SIDE:
        raise InvalidValue(f"{value:.6E} is out of range: at most {MAX_DIGITS_EACH_SIDE} digits before and "
                             f"{MAX_DIGITS_EACH_SIDE} after the point.")
    return value.copy_abs() if value.is_zero() else value  # "-0" is stored and shown as 0


def parse_decimal(text: str) -> Decimal:
    """Read money or an amount from text under the one grammar; InvalidValue says what is wrong."""
    if len(text) > MAX_DECIMAL_CHARS or not DECIMAL_GRAMMAR.fullmatch(text):
        raise InvalidValue(f'{_shown(text)} is not a number in plain decimal form, such as "0.5" or "2.5e3" '
                           "(ASCII digits, an optional sign, point and exponent; no spaces, underscores or other "
                           "scripts' digits).")
    return bounded_decimal(Decimal(text))


def check_btc_amount(amount: Decimal) -> Decimal:
    """An amount of BTC: more than 0, at most the total supply, in whole satoshis."""
    if amount <= 0:
        raise InvalidValue("The amount must be more than 0 BTC.")
    if amount > MAX_BTC:
        raise InvalidValue("The amount can't exceed 21,000,000 BTC, the total supply.")
    if amount != amount.quantize(SATOSHI):
        raise InvalidValue("The amount can have at most 8 decimals (1 satoshi = 0.00000001 BTC).")
    return amount


def check_btc_fee(fee: Decimal) -> Decimal:
    """BTC lost on the way by a transfer: 0 or more, in whole satoshis (less than the amount: the domain's rule)."""
    if fee < 0:
        raise InvalidValue("The fee can't be negative.")
    if fee > MAX_BTC:
        raise InvalidValue("The fee can't exceed 21,000,000 BTC, the total supply.")
    if fee != fee.quantize(SATOSHI):
        raise InvalidValue("The fee can have at most 8 decimals (1 satoshi = 0.00000001 BTC).")
    return fee


def _usd_decimals(value: Decimal, what: str) -> Decimal:
    if -value.as_tuple().exponent > MAX_USD_DECIMALS:  # type: ignore[operator]
        raise InvalidValue(f"The {what} can have at most {MAX_USD_DECIMALS} decimals.")
    return value


def check_fee(fee: Decimal) -> Decimal:
    """A fee in USD: 0 or more, at most MAX_USD."""
    if fee < 0:
        raise InvalidValue("The fee can't be negative.")
    if fee > MAX_USD:
        raise InvalidValue("The fee can't exceed 10^15 USD.")
    return _usd_decimals(fee, "fee")


def check_price(price: Decimal) -> Decimal:
    """A price of 1 BTC in USD: more than 0, at most MAX_USD."""
    if price <= 0 or price > MAX_USD:
        raise InvalidValue("The price must be a positive amount of USD, at most 10^15.")
    return _usd_decimals(price, "price")


def check_goal(goal: Decimal) -> Decimal:
    """A portfolio's goal in USD: more than 0, at most MAX_USD."""
    if goal <= 0 or goal > MAX_USD:
        raise InvalidValue("The goal must be a positive amount of USD, at most 10^15.")
    return _usd_decimals(goal, "goal")


def _as_pydantic_error(check: Callable[[Any], Any], value: Any) -> Any:
    # A custom error keeps our sentence as the message, without pydantic's "Value error, " prefix.
    try:
        return check(value)
    except ValueError as error:
        raise PydanticCustomError("invalid_value", str(error)) from None


def _money_input(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return _as_pydantic_error(bounded_decimal, value)  # type: ignore[no-any-return]
    if isinstance(value, str):
        return _as_pydantic_error(parse_decimal, value)  # type: ignore[no-any-return]
    raise PydanticCustomError("money_type", 'Money and amounts travel as decimal strings such as "0.5", never as a '
                                            "float or another JSON number.")


def decimal_text(value: Decimal) -> str:
    """Plain positional notation, so that 1E+2 never reaches a client."""
    return format(value, "f")


def _ranged(check: Callable[[Decimal], Decimal]) -> AfterValidator:
    return AfterValidator(lambda value: _as_pydantic_error(check, value))


_MONEY_SCHEMA = {"type": "string", "pattern": f"^{DECIMAL_GRAMMAR.pattern}$", "maxLength": MAX_DECIMAL_CHARS}

Money = Annotated[
    Decimal,
    BeforeValidator(_money_input, json_schema_input_type=str),
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_SCHEMA),
]
"""A USD or BTC quantity: exact Decimal in Python, a string of the decimal grammar in JSON."""

BtcAmount = Annotated[Money, _ranged(check_btc_amount)]
"""An amount of BTC a person records: > 0, <= 21,000,000, at most 8 decimals."""
BtcFee = Annotated[Money, _ranged(check_btc_fee)]
"""BTC lost on the way by a transfer: >= 0, at most 8 decimals."""
UsdFee = Annotated[Money, _ranged(check_fee)]
UsdPrice = Annotated[Money, _ranged(check_price)]
UsdGoal = Annotated[Money, _ranged(check_goal)]

# ---------------------------------------------------------------- text

MAX_NOTE_CHARS = 500


def check_plain_text(text: str) -> str:
    """Text a person typed: no control characters (a tab is fine) and no lone surrogates, which Postgres refuses."""
    if any((unicodedata.category(c) == "Cc" and c != "\t") or unicodedata.category(c) == "Cs" for c in text):
        raise InvalidValue("must not contain control characters (such as NUL or a line break)")
    return text


def check_note(note: str) -> str:
    """A transaction's note: plain text of at most MAX_NOTE_CHARS characters."""
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidValue(f"The note can have at most {MAX_NOTE_CHARS} characters.")
    return check_plain_text(note)


PlainText = Annotated[str, AfterValidator(lambda text: _as_pydantic_error(check_plain_text, text))]
Note = Annotated[str, MaxLen(MAX_NOTE_CHARS), AfterValidator(lambda text: _as_pydantic_error(check_note, text))]
"""A transaction's note: at most 500 characters, no control characters."""

# ---------------------------------------------------------------- times

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
MAX_UNIX_SECONDS = int(LATEST_TIME.timestamp())
"""253402300799: the last second Python's datetime can hold, so that no time converts with an OverflowError."""
UNIX_SECONDS_TEXT = re.compile(r"-?[0-9]{1,30}")
TIME_RANGE_SENTENCE = (f"times must fall between {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} and "
                       f"{LATEST_TIME:%Y-%m-%dT%H:%M:%SZ} (unix seconds 0 to {MAX_UNIX_SECONDS})")


class TimeOutOfRange(InvalidValue):
    """A time that is valid text but outside the range every service can compute with."""


def utc_time(moment: datetime) -> datetime:
    """An aware time converted to UTC, or TimeOutOfRange (a year-1 time with an offset has no UTC datetime)."""
    try:
        converted = moment.astimezone(UTC)
    except OverflowError:
        converted = None
    if converted is None or not EARLIEST_TIME <= converted <= LATEST_TIME:
        raise TimeOutOfRange(f"The time {moment.isoformat()} is out of range: {TIME_RANGE_SENTENCE}.")
    return converted


def check_unix_seconds(seconds: int) -> int:
    if not 0 <= seconds <= MAX_UNIX_SECONDS:
        raise TimeOutOfRange(f"The time {seconds} is out of range: {TIME_RANGE_SENTENCE}.")
    return seconds


def from_unix_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(check_unix_seconds(seconds), UTC)


def _unix_seconds_input(value: Any) -> int:
    if isinstance(value, str) and UNIX_SECONDS_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("unix_seconds", "A time here is whole unix seconds written in ASCII digits, "
                                                  "such as 1709287200.")
    return _as_pydantic_error(check_unix_seconds, value)  # type: ignore[no-any-return]


def _utc_time_input(value: Any, parse: Callable[[Any], datetime]) -> datetime:
    # Whole numbers are unix seconds, always: pydantic would read a large one as milliseconds.
    if isinstance(value, str) and UNIX_SECONDS_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _as_pydantic_error(from_unix_seconds, value)  # type: ignore[no-any-return]
    if isinstance(value, float):
        raise PydanticCustomError("unix_seconds", "A time is ISO 8601 text or whole unix seconds.")
    return _as_pydantic_error(utc_time, parse(value))  # type: ignore[no-any-return]


UtcDatetime = Annotated[AwareDatetime, WrapValidator(_utc_time_input)]
"""An aware datetime (or unix seconds) normalised to UTC, within EARLIEST_TIME..LATEST_TIME; a naive one is refused."""

UnixSeconds = Annotated[int, BeforeValidator(_unix_seconds_input, json_schema_input_type=int), Ge(0),
                        Le(MAX_UNIX_SECONDS)]
"""Unix seconds from 0 to MAX_UNIX_SECONDS; anything else is refused with a sentence saying the range."""

UnixHour = Annotated[UnixSeconds, Field(multiple_of=3600, description="Candle start, unix seconds divisible by 3600")]


def utc_now() -> datetime:
    return datetime.now(UTC)
