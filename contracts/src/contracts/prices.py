"""Messages about BTC-USD prices: requests for a trade's price, answers, ticks and range queries."""

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar, Literal
from uuid import NAMESPACE_URL, uuid5

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import names
from contracts.envelope import Message
from contracts.types import Money, UnixHour, UnixSeconds, UtcDatetime

CANDLE_OPEN = "candle-open"
"""The `source` of a market price: the open of the candle its hour starts (SPEC's price rule)."""
HOUR_SECONDS = 3600


def candle_hour(at_unix_seconds: int) -> int:
    """The start of the candle whose open is price_at(t): floor(t / 3600) * 3600."""
    return at_unix_seconds - at_unix_seconds % HOUR_SECONDS


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


MAX_PRICES_PER_REQUEST = 5000
"""A batch price request (schema 2) names at most this many trades."""


class WantedPrice(BaseModel):
    """One trade of a batch price request; `request_id` is what the answer refers to. A batch of many portfolios
    (the request names none) names each trade's `portfolio_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(min_length=1, max_length=100)
    transaction_id: str = Field(min_length=1, max_length=100)
    at: UtcDatetime
    portfolio_id: str | None = Field(default=None, min_length=1, max_length=100)


class PriceRequested(Message):
    """The portfolio service needs the BTC price at `at` for a transaction (schema 1), or at each of `items`'
    times for many transactions at once (schema 2: an import or any burst asks in one message)."""

    routing_key: ClassVar[str] = names.PRICE_REQUESTED
    supported_versions: ClassVar[frozenset[int]] = frozenset({1, 2})

    transaction_id: str | None = Field(default=None, min_length=1)
    portfolio_id: str | None = None
    at: UtcDatetime | None = None
    items: list[WantedPrice] = Field(default_factory=list, max_length=MAX_PRICES_PER_REQUEST)

    @model_validator(mode="after")
    def _one_form(self) -> "PriceRequested":
        if self.schema_version == 1 and (self.transaction_id is None or self.at is None or self.items):
            raise ValueError("schema 1 names one transaction_id and its at, and no items")
        if self.schema_version == 2 and (not self.items or self.transaction_id is not None or self.at is not None):
            raise ValueError("schema 2 names its trades in items, at least one")
        return self

    @classmethod
    def batch(cls, portfolio_id: str | None, items: list[WantedPrice], **envelope: Any) -> "PriceRequested":
        return cls(schema_version=2, portfolio_id=portfolio_id, items=items, **envelope)

    @property
    def many_portfolio_items(self) -> bool:
        """Whether its items can join a batch of many portfolios: one trade's request, or such a batch already."""
        return self.schema_version == 1 or self.portfolio_id is None

    def wanted(self) -> list[WantedPrice]:
        """Every trade asked for; a schema 1 request is its own request_id."""
        if self.items or self.transaction_id is None or self.at is None:
            return self.items
        return [WantedPrice(request_id=self.message_id, transaction_id=self.transaction_id, at=self.at,
                            portfolio_id=self.portfolio_id)]


def combine_price_requests(messages: Sequence[Message]) -> list[Message]:
    """The messages with their price requests of single trades (schema 1, and batches that already name each
    trade's portfolio) merged into batch requests of many portfolios (schema 2, each item naming its portfolio, up
    to MAX_PRICES_PER_REQUEST each): one message and one answer for many trades instead of two a trade. Each item
    keeps its `request_id`, which the answer refers to; a lone request stays as it is, and so does a batch of one
    portfolio (an import's, answered and applied as one). The other messages come first, in their order."""
    mergeable = [m for m in messages if isinstance(m, PriceRequested) and m.many_portfolio_items]
    if len(mergeable) < 2:
        return list(messages)
    items = [item for request in mergeable for item in request.wanted()]
    return [m for m in messages if not (isinstance(m, PriceRequested) and m.many_portfolio_items)] + [
        PriceRequested.batch(None, items[start:start + MAX_PRICES_PER_REQUEST])
        for start in range(0, len(items), MAX_PRICES_PER_REQUEST)]


class ResolvedPrice(BaseModel):
    """One answer of a batch: the open of the candle that starts at `hour` (`portfolio_id` as the item named it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    transaction_id: str
    at: UtcDatetime
    hour: UnixHour
    price_usd: Money
    source: str
    portfolio_id: str | None = None


class UnavailablePrice(BaseModel):
    """One answer of a batch: no price can be had for `at`, with the reason and a sentence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    transaction_id: str
    at: UtcDatetime
    reason: UnavailableReason
    detail: str
    portfolio_id: str | None = None


class PriceResolved(Message):
    """The price for a PriceRequested (schema 1): the open of the candle that starts at `hour`; or the answers
    to a batch request (schema 2): the trades `resolved`, and those `unavailable` with their reasons."""

    routing_key: ClassVar[str] = names.PRICE_RESOLVED
    supported_versions: ClassVar[frozenset[int]] = frozenset({1, 2})

    transaction_id: str | None = None
    portfolio_id: str | None = None
    at: UtcDatetime | None = None
    hour: UnixHour | None = None
    price_usd: Money | None = None
    source: str | None = None
    resolved: list[ResolvedPrice] = Field(default_factory=list, max_length=MAX_PRICES_PER_REQUEST)
    unavailable: list[UnavailablePrice] = Field(default_factory=list, max_length=MAX_PRICES_PER_REQUEST)

    @model_validator(mode="after")
    def _one_form(self) -> "PriceResolved":
        single = (self.transaction_id, self.at, self.hour, self.price_usd, self.source)
        if self.schema_version == 1 and (any(v is None for v in single) or self.resolved or self.unavailable):
            raise ValueError("schema 1 carries one transaction's transaction_id, at, hour, price_usd and source")
        if self.schema_version == 2 and (any(v is not None for v in single)
                                         or not (self.resolved or self.unavailable)):
            raise ValueError("schema 2 carries its answers in resolved and unavailable, at least one")
        return self

    @property
    def many_portfolios(self) -> bool:
        """The answers to a batch of many portfolios (each answer names its own)."""
        return self.schema_version == 2 and self.portfolio_id is None

    def singles(self) -> "list[PriceResolved | PriceUnavailable]":
        """Each answer of a batch as the single answer (schema 1) it stands for: caused by its own request, with a
        message id derived from this message's, so a redelivered batch gives the same ids (an inbox sees them)."""
        def envelope(request_id: str) -> dict[str, Any]:
            return {"message_id": uuid5(NAMESPACE_URL, f"{self.message_id}/{request_id}").hex,
                    "correlation_id": self.correlation_id, "causation_id": request_id, "occurred_at": self.occurred_at}
        answers: list[PriceResolved | PriceUnavailable] = [
            PriceResolved(transaction_id=a.transaction_id, portfolio_id=a.portfolio_id or self.portfolio_id, at=a.at,
                          hour=a.hour, price_usd=a.price_usd, source=a.source, **envelope(a.request_id))
            for a in self.resolved]
        answers += [PriceUnavailable(transaction_id=u.transaction_id, portfolio_id=u.portfolio_id or self.portfolio_id,
                                     at=u.at, reason=u.reason, detail=u.detail, **envelope(u.request_id))
                    for u in self.unavailable]
        return answers


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
