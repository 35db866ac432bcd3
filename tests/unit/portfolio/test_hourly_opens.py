"""The replica of hourly opens prices only finished hours it has fetched, and fetches the hours around a miss once."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.prices import Candle, PriceRange
from portfolio.market_data import REPLICA_AHEAD_HOURS, REPLICA_BEHIND_HOURS, HourlyOpens

START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = 3600


def hour(n: int) -> int:
    return int(START.timestamp()) + n * HOUR


class StoredHours:
    """The price service's range answers over some stored hours (its `holes` have no candle)."""

    def __init__(self, first: int, last: int, holes: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.first, self.last, self.holes = first, last, holes
        self.asked: list[tuple[int, int]] = []
        self.answering = True

    async def range(self, start: int, end: int, step: str) -> PriceRange | None:
        assert step == "hour"
        self.asked.append((start, end))
        if not self.answering:
            return None
        candles = [Candle(hour=h, open=Decimal(h // HOUR), high=Decimal(1), low=Decimal(1), close=Decimal(1),
                          volume=Decimal(1))
                   for h in range(max(start, self.first), min(end, self.last) + 1, HOUR) if h not in self.holes]
        return PriceRange(start=start, end=end, step="hour", candles=candles)


async def settled(replica: HourlyOpens) -> None:
    if replica.fetching is not None:
        await replica.fetching


async def test_a_miss_fetches_the_hours_around_it_and_later_trades_are_priced_from_the_replica() -> None:
    stored = StoredHours(hour(-10_000), hour(10_000))
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    newest = hour(10_000)
    at = START + timedelta(minutes=59, seconds=59)
    assert replica.price_at(at, newest) is None  # asked through price.requested; the hours are fetched meanwhile
    await settled(replica)
    assert stored.asked == [(hour(-REPLICA_BEHIND_HOURS), hour(REPLICA_AHEAD_HOURS))]
    assert replica.price_at(at, newest) == (hour(0), Decimal(hour(0) // HOUR))  # the open of its hour
    assert replica.price_at(START + timedelta(hours=5, minutes=30), newest) == (hour(5), Decimal(hour(5) // HOUR))
    assert replica.price_at(START - timedelta(hours=REPLICA_BEHIND_HOURS), newest) is not None
    assert len(stored.asked) == 1  # every hour the answer held is priced without another question


async def test_an_hour_after_the_newest_finished_candle_is_never_priced_from_the_replica() -> None:
    stored = StoredHours(hour(-100), hour(100))
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    replica.remember(hour(50), Decimal(1), newest_finished_hour=hour(50))
    assert replica.price_at(START + timedelta(hours=50), newest_finished_hour=hour(49)) is None
    assert replica.price_at(START + timedelta(hours=50), newest_finished_hour=None) is None
    assert replica.price_at(START + timedelta(hours=50), newest_finished_hour=hour(50)) == (hour(50), Decimal(1))
    assert stored.asked == []


async def test_a_hole_in_a_fetched_span_is_not_asked_for_again() -> None:
    stored = StoredHours(hour(-1000), hour(1000), holes={hour(3)})
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    replica.price_at(START, hour(1000))
    await settled(replica)
    assert replica.price_at(START + timedelta(hours=3), hour(1000)) is None
    await settled(replica)
    assert len(stored.asked) == 1  # the hole goes through price.requested, which fetches it from the provider


async def test_an_unanswered_fetch_is_asked_again_only_after_a_while() -> None:
    stored = StoredHours(hour(-1000), hour(1000))
    stored.answering = False
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    for _ in range(3):
        assert replica.price_at(START, hour(1000)) is None
        await settled(replica)
    assert len(stored.asked) == 1


async def test_the_hours_after_the_newest_candle_fetched_are_fetched_again_once_they_are_needed() -> None:
    stored = StoredHours(hour(-1000), hour(10))
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    replica.price_at(START, hour(10))
    await settled(replica)
    stored.last = hour(20)  # later candles have come in since
    replica.asked_at.clear()  # as after ASK_AGAIN_SECONDS
    assert replica.price_at(START + timedelta(hours=15), hour(20)) is None
    await settled(replica)
    assert replica.price_at(START + timedelta(hours=15), hour(20)) == (hour(15), Decimal(hour(15) // HOUR))


async def test_closing_cancels_a_fetch_in_flight() -> None:
    class Slow(StoredHours):
        async def range(self, start: int, end: int, step: str) -> PriceRange | None:
            await asyncio.sleep(60)
            return None

    replica = HourlyOpens(Slow(0, 0))  # type: ignore[arg-type]
    replica.price_at(START, hour(10))
    fetching = replica.fetching
    assert fetching is not None
    await asyncio.wait_for(replica.close(), 1)
    assert fetching.cancelled() and replica.fetching is None


async def test_a_candle_after_the_newest_finished_one_is_never_kept_even_once_its_hour_has_ended() -> None:
    """The price service may hold the hour still trading as a provisional candle (replaced when the hour ends): a
    fetch or an answer that carries it keeps nothing of it."""
    stored = StoredHours(hour(-1000), hour(30))
    replica = HourlyOpens(stored)  # type: ignore[arg-type]
    replica.price_at(START, newest_finished_hour=hour(10))
    await settled(replica)
    assert stored.asked == [(hour(-REPLICA_BEHIND_HOURS), hour(10))]
    replica.remember(hour(12), Decimal(7), newest_finished_hour=hour(10))
    assert hour(11) not in replica.opens and hour(12) not in replica.opens
    assert replica.price_at(START + timedelta(hours=10), newest_finished_hour=hour(10)) is not None
