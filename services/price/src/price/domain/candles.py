"""Hourly candles and the hour arithmetic of the price rule."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from contracts.prices import HOUR_SECONDS as HOUR
from contracts.prices import candle_hour as hour_of

__all__ = ["HOUR", "CandleRow", "hour_of", "is_all_zero", "is_finished", "known_at"]


@dataclass(frozen=True, slots=True)
class CandleRow:
    hour: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    provisional: bool = False
    """The hour is still trading: its open is known, but its high, low and close are a snapshot until it ends."""


def is_finished(hour: int, now: int) -> bool:
    return hour + HOUR <= now


def known_at(rows: Iterable[CandleRow], now: int) -> list[CandleRow]:
    """The rows as they stand at `now`: an hour still trading is provisional, an hour not yet begun is dropped."""
    return [replace(row, provisional=not is_finished(row.hour, now)) for row in rows if row.hour <= now]


def is_all_zero(row: CandleRow) -> bool:
    """Rows from before the pair existed come back with every price 0: they are not prices."""
    return row.open == row.high == row.low == row.close == 0
