"""The price rule of SPEC: price_at(t) is the open of the candle that starts at floor(t/3600)*3600."""

from dataclasses import dataclass
from enum import StrEnum

from price.domain.candles import CandleRow, hour_of


class PriceDecision(StrEnum):
    RESOLVED = "resolved"
    BEFORE_DATA = "before_data"
    IN_FUTURE = "in_future"
    FETCH = "fetch"
    """Inside the knowable past but not stored: ask the provider."""


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: PriceDecision
    hour: int
    candle: CandleRow | None = None


def decide_price(at: int, now: int, first_hour: int | None, candle: CandleRow | None) -> Verdict:
    """Decide how to answer for instant `at`, given the stored first hour and the stored candle of its hour."""
    hour = hour_of(at)
    if at > now:
        return Verdict(PriceDecision.IN_FUTURE, hour)
    if candle is not None:
        return Verdict(PriceDecision.RESOLVED, hour, candle)
    if first_hour is None or hour < first_hour:
        return Verdict(PriceDecision.BEFORE_DATA, hour)
    return Verdict(PriceDecision.FETCH, hour)
