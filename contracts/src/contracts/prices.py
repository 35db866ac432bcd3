"""Messages about BTC-USD prices: requests for a trade's price, answers, ticks and range queries."""

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import names
from contracts.envelope import Message
from contracts.types import Money, UnixHour, UnixSeconds, UtcDatetime


class Candle(BaseModel):
    """One hourly BTC-USD candle; `hour` is its start in unix seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hour: UnixHour
    open: Money
    high: Money
    low: Money
    close: Money
    volume: Money


class UnavailableReason(StrEnum):
    BEFORE_DATA = "before_data"
    IN_FUTURE = "in_future"
    PROVIDER_UNAVAILABLE = "provider_unavailable"


class PriceRequested(Message):
    """The portfolio service needs the BTC price at `at` for a transaction."""

    routing_key: ClassVar[str] = names.PRICE_REQUESTED

    transaction_id: str = Field(min_length=1)
    portfolio_id: str | None = None
    at: UtcDatetime


class PriceResolved(Message):
    """The price for a PriceRequested: the open of the candle that starts at `hour`."""

    routing_key: ClassVar[str] = names.PRICE_RESOLVED

    transaction_id: str
    portfolio_id: str | None = None
    at: UtcDatetime
    hour: UnixHour
    price_usd: Money
    source: str


class PriceUnavailable(Message):
    """No price can be had for `at`; `detail` says why in a sentence."""

    routing_key: ClassVar[str] = names.PRICE_UNAVAILABLE

    transaction_id: str
    portfolio_id: str | None = None
    at: UtcDatetime
    reason: UnavailableReason
    detail: str


class PriceTicked(Message):
    """The latest known price changed: the close of the newest candle, valid at `as_of`."""

    routing_key: ClassVar[str] = names.PRICE_TICKED

    hour: UnixHour
    price_usd: Money
    as_of: UtcDatetime
    open_usd: Money | None = None
    """The open of that newest candle; at hour % 86400 == 0 it is the day's midnight price."""


class PriceRangeRequested(Message):
    """Query: candles from `start` to `end` (unix seconds, inclusive) at step hour or day."""

    routing_key: ClassVar[str] = names.PRICE_RANGE
    max_hours: ClassVar[int] = 24 * 366 * 20

    start: UnixSeconds
    end: UnixSeconds
    step: Literal["hour", "day"] = "hour"

    @model_validator(mode="after")
    def _ordered(self) -> "PriceRangeRequested":
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class PriceRange(BaseModel):
    """Reply to PriceRangeRequested: the stored candles in the range, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int
    end: int
    step: Literal["hour", "day"]
    candles: list[Candle]


class PriceAtRequested(Message):
    """Query: the price at instant `at` (unix seconds) under the price rule."""

    routing_key: ClassVar[str] = names.PRICE_AT

    at: UnixSeconds


class PriceAt(BaseModel):
    """Reply to PriceAtRequested."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: int
    hour: UnixHour
    price_usd: Money
    source: str
    candle: Candle


class LatestPriceRequested(Message):
    routing_key: ClassVar[str] = names.PRICE_LATEST


class LatestPrice(BaseModel):
    """Reply to LatestPriceRequested: the close of the newest candle, valid at `as_of` (hour + 3600)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hour: UnixHour
    price_usd: Money
    as_of: UtcDatetime
    candle: Candle
