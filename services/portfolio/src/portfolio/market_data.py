"""Prices the portfolio service needs from the price service: hourly opens (pricing), daily midnight opens
(drawdown) and ranges (history)."""

import asyncio
import bisect
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import structlog
from contracts.prices import (
    HOUR_SECONDS,
    LatestPrice,
    LatestPriceRequested,
    PriceRange,
    PriceRangeRequested,
    candle_hour,
)
from contracts.rpc import RequestTimeout, RpcClient

from portfolio import repository
from portfolio.domain import count_midnights, midnights_between

log = structlog.get_logger()
FETCH_AHEAD_DAYS = 366
ASK_AGAIN_SECONDS = 30.0


@dataclass
class PriceSource:
    """Asks the price service over request/reply; `None` client means offline (tests of pure handlers).

    After an unanswered question it stays quiet for a while, so a price-service outage does not slow every
    command down by a timeout."""

    client: RpcClient | None
    timeout_seconds: float = 3.0
    quiet_seconds: float = 30.0
    quiet_until: float = 0.0

    async def range(self, start: int, end: int, step: str) -> PriceRange | None:
        if self.client is None or time.monotonic() < self.quiet_until:
            return None
        try:
            reply = await self.client.call(PriceRangeRequested(start=start, end=end, step=step),  # type: ignore[arg-type]
                                           timeout=self.timeout_seconds)
        except RequestTimeout:
            log.warning("price_range_unanswered", start=start, end=end)
            self.quiet_until = time.monotonic() + self.quiet_seconds
            return None
        return reply.result_as(PriceRange) if reply.ok else None

    async def latest(self) -> LatestPrice | None:
        if self.client is None:
            return None
        try:
            reply = await self.client.call(LatestPriceRequested())
        except RequestTimeout:
            return None
        return reply.result_as(LatestPrice) if reply.ok else None


@dataclass
class DailyOpens:
    """price_at(00:00 UTC) per day, cached in memory and in the daily_opens table, fetched once per day.

    The days are also kept sorted, so a range is two binary searches rather than a walk over its days."""

    source: PriceSource
    known: dict[datetime, Decimal | None] = field(default_factory=dict)
    days: list[datetime] = field(default_factory=list)
    opens: list[Decimal | None] = field(default_factory=list)
    asked_again_at: dict[datetime, float] = field(default_factory=dict)
    """Midnights not in the data yet are asked for again only after a while, not on every write."""

    async def load(self, pool: asyncpg.Pool) -> None:
        far_past = datetime(2009, 1, 1, tzinfo=UTC)
        self.learn(await repository.daily_opens(pool, far_past, datetime.now(UTC) + timedelta(days=1)))

    def learn(self, found: Iterable[tuple[datetime, Decimal | None]]) -> None:
        self.known.update(found)
        self.days = sorted(self.known)
        self.opens = [self.known[day] for day in self.days]

    def _span(self, after: datetime, until: datetime) -> tuple[int, int]:
        return bisect.bisect_right(self.days, after), bisect.bisect_right(self.days, until)

    async def ensure(self, connection: asyncpg.Connection | asyncpg.Pool, after: datetime | None,
                     until: datetime | None) -> bool:
        """Know the midnight opens in (after, until]. False when one before `until` is still unknown: the price
        service did not answer, or has no candle for it yet (the midnight at `until` itself may be the next one).

        A midnight with no candle at or before the newest candle (before the data starts, or a hole) is known to
        have no price; one after it is not known yet and is asked again later, never cached as missing."""
        if after is None or until is None or until <= after:
            return True
        first, last = self._span(after, until)
        if last - first == count_midnights(after, until):
            return True
        missing = [day for day in midnights_between(after, until) if day not in self.known]
        if time.monotonic() >= self.asked_again_at.get(missing[0], 0.0):
            await self._ask(connection, missing[0], missing[-1])
        return all(day in self.known for day in missing if day < until)

    async def _ask(self, connection: asyncpg.Connection | asyncpg.Pool, first: datetime, last: datetime) -> None:
        # Ask for a year ahead at once (never past now): trades arrive in time order, so one question serves many.
        end = min(max(last, first + timedelta(days=FETCH_AHEAD_DAYS)), datetime.now(UTC))
        answer = await self.source.range(int(first.timestamp()), int(end.timestamp()), "day")
        if answer is None:
            return  # the price service did not answer; try again later rather than caching a gap
        market = await repository.market(connection)
        newest = datetime.fromtimestamp(market.hour, UTC) if market is not None else None
        opens = {datetime.fromtimestamp(c.hour, UTC): c.open for c in answer.candles}
        if opens:
            newest = max(newest or first, max(opens))
        found = [(day, opens.get(day)) for day in midnights_between(first - timedelta(days=1), end)
                 if day in opens or (newest is not None and day <= newest)]
        if any(day not in opens for day in midnights_between(first - timedelta(days=1), end)):
            self.asked_again_at[first] = time.monotonic() + ASK_AGAIN_SECONDS
        await repository.store_daily_opens(connection, found)
        self.learn(found)

    def between(self, after: datetime, until: datetime) -> Sequence[tuple[datetime, Decimal]]:
        """Opens at the midnights in (after, until] that have a price."""
        first, last = self._span(after, until)
        if first == last:
            return ()  # most trades follow the one before on the same day
        return [(day, price) for day, price in zip(self.days[first:last], self.opens[first:last], strict=True)
                if price is not None]

    def remember(self, day: datetime, price: Decimal) -> None:
        self.learn([(day, price)])


REPLICA_BEHIND_HOURS = 24 * 7
REPLICA_AHEAD_HOURS = 24 * 120
"""A miss fetches the hours from a week before it to four months after it (never past now): trades and imports
arrive in time order, so one question serves the trades that follow (about 400 KB of candles)."""
REPLICA_CAPACITY_HOURS = 24 * 366 * 20
"""At most twenty years of hourly opens (about 20 MB); past that the replica starts over from the newest fetch."""


@dataclass
class HourlyOpens:
    """A replica of the price service's hourly opens, so that a trade at an hour it knows is priced as it is
    recorded (price_at(t) is the open of the candle that starts at floor(t / 3600) * 3600) instead of by a
    price.requested and its answer.

    A price is a fact of a finished hour: it never changes once the hour has ended. So an open is kept, and used,
    only for an hour no later than the newest finished candle the service has been told of (the latest price's
    hour; a provisional candle, which the price service replaces when its hour ends, is never kept); the hour still
    trading, an hour the replica has not fetched, and a hole in the data go through price.requested as before. A
    miss fetches the hours around it over price.range in the background (the trade itself is priced through
    price.requested meanwhile); each price answer is remembered too."""

    source: PriceSource
    opens: dict[int, Decimal] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Hours fetched: (first, last) inclusive, the last being the newest candle the answer held."""
    asked_at: dict[int, float] = field(default_factory=dict)
    fetching: "asyncio.Task[None] | None" = None

    def price_at(self, at: datetime, newest_finished_hour: int | None) -> tuple[int, Decimal] | None:
        """(hour, open) for a trade at `at`, or None: ask the price service (and fetch the hours around it)."""
        hour = candle_hour(int(at.timestamp()))
        if newest_finished_hour is None or hour > newest_finished_hour:
            return None
        price = self.opens.get(hour)
        if price is None:
            self.want(hour, newest_finished_hour)
            return None
        return hour, price

    def remember(self, hour: int, price: Decimal, newest_finished_hour: int | None) -> None:
        """An open the price service answered with, kept when its candle is finished."""
        if newest_finished_hour is not None and hour <= newest_finished_hour and len(self.opens) < REPLICA_CAPACITY_HOURS:
            self.opens[hour] = price

    def covered(self, hour: int) -> bool:
        return any(first <= hour <= last for first, last in self.spans)

    def want(self, hour: int, newest_finished_hour: int) -> None:
        """Fetch the hours around `hour` in the background, unless they were fetched or are being fetched, or were
        asked for within the last ASK_AGAIN_SECONDS (a hole in the data, or the price service is down)."""
        if self.fetching is not None or self.covered(hour):
            return
        key = hour - hour % (REPLICA_AHEAD_HOURS * HOUR_SECONDS)
        if time.monotonic() < self.asked_at.get(key, 0.0):
            return
        self.asked_at[key] = time.monotonic() + ASK_AGAIN_SECONDS
        self.fetching = asyncio.get_running_loop().create_task(self.fetch(hour, newest_finished_hour))
        self.fetching.add_done_callback(self._fetched)

    def _fetched(self, task: "asyncio.Task[None]") -> None:
        self.fetching = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("hourly_opens_fetch_failed", reason=repr(task.exception()))

    async def fetch(self, hour: int, newest_finished_hour: int) -> None:
        """The finished hours from a week before `hour` to four months after it (up to the newest finished one)."""
        first = max(hour - REPLICA_BEHIND_HOURS * HOUR_SECONDS, 0)
        end = min(hour + REPLICA_AHEAD_HOURS * HOUR_SECONDS, newest_finished_hour)
        answer = await self.source.range(first, end, "hour")
        candles = [candle for candle in answer.candles if candle.hour <= end] if answer is not None else []
        if not candles:
            return
        if len(self.opens) + len(candles) > REPLICA_CAPACITY_HOURS:
            self.opens.clear()
            self.spans.clear()
        self.opens.update((candle.hour, candle.open) for candle in candles)
        self.spans.append((first, candles[-1].hour))

    async def close(self) -> None:
        if self.fetching is not None:
            self.fetching.cancel()
            await asyncio.gather(self.fetching, return_exceptions=True)
