"""Value types every message uses: exact money as strings, aware UTC times."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer

SATOSHI = Decimal("0.00000001")


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('money travels as a decimal string such as "0.5", never as a float')
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def decimal_text(value: Decimal) -> str:
    """Plain positional notation, so that 1E+2 never reaches a client."""
    return format(value, "f")


Money = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(allow_inf_nan=False),
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
]
"""A USD or BTC quantity: exact Decimal in Python, a string in JSON."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, normalised to UTC; a naive one is refused."""

UnixHour = Annotated[int, Field(ge=0, multiple_of=3600, description="Candle start, unix seconds divisible by 3600")]


def utc_now() -> datetime:
    return datetime.now(UTC)
