"""Hourly candles and the hour arithmetic of the price rule."""

from dataclasses import dataclass
from decimal import Decimal

HOUR = 3600


def hour_of(unix_seconds: int) -> int:
    """The start of the candle that contains `unix_seconds`: floor(t / 3600) * 3600."""
    return unix_seconds - unix_seconds % HOUR


@dataclass(frozen=True, slots=True)
class CandleRow:
    hour: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def is_all_zero(row: CandleRow) -> bool:
    """Rows from before the pair existed come back with every price 0: they are not prices."""
    return row.open == row.high == row.low == row.close == 0
