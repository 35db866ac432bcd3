"""The hour still trading is stored as provisional: its open prices trades now, but it is not the latest price
(and its snapshot close never ticks) until the hour ends and the finished candle replaces it."""

from datetime import UTC, datetime
from decimal import Decimal

from contracts.prices import LatestPriceRequested, PriceResolved, PriceTicked
from price.handlers import answer_latest, sync_newest

from contracts import decode, names
from tests.integration.price.test_price_on_the_bus import ask, request_at
from tests.support.bus import listening
from tests.support.fake_cryptocompare import synthetic_close, synthetic_open

NEWEST_STORED = 1726074000  # the shared CSV's last hour
TRADING_HOUR = NEWEST_STORED + 10 * 3600
SNAPSHOT_CLOSE = Decimal("61000.5")
FINAL_CLOSE = Decimal("62000.25")


async def stored(price_app, hour: int) -> tuple[Decimal, bool]:
    record = await price_app.service.store.pool.fetchrow("SELECT close, provisional FROM candles WHERE hour = $1", hour)
    return record["close"], record["provisional"]


async def test_hour_still_trading_is_provisional_and_replaced_when_it_ends(rabbit_url, price_app, fake_provider) -> None:
    now = TRADING_HOUR + 1800
    price_app.service.clock = lambda: now
    fake_provider.fake.closes[TRADING_HOUR] = SNAPSHOT_CLOSE
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE, names.PRICE_TICKED) as events:
        await ask(rabbit_url, request_at(TRADING_HOUR + 60, "tx-now"))
        received = await events.collect(2)
    by_key = {m.routing_key: m for m in received}
    assert decode(PriceResolved, by_key[names.PRICE_RESOLVED].body).price_usd == synthetic_open(TRADING_HOUR)
    assert await stored(price_app, TRADING_HOUR) == (SNAPSHOT_CLOSE, True)

    tick = decode(PriceTicked, by_key[names.PRICE_TICKED].body)
    assert tick.hour == TRADING_HOUR - 3600, "the newest finished hour ticks, not the one still trading"
    assert tick.as_of <= datetime.fromtimestamp(now, UTC)
    latest = (await answer_latest(price_app.service, LatestPriceRequested())).result
    assert latest["hour"] == TRADING_HOUR - 3600
    assert Decimal(latest["price_usd"]) == synthetic_close(TRADING_HOUR - 3600)
    assert datetime.fromisoformat(latest["as_of"]).timestamp() <= now

    later = TRADING_HOUR + 3600 + 600
    price_app.service.clock = lambda: later
    fake_provider.fake.closes[TRADING_HOUR] = FINAL_CLOSE
    async with listening(rabbit_url, names.PRICE_TICKED) as ticks:
        assert await sync_newest(price_app.service) == 1
        tick = decode(PriceTicked, (await ticks.next()).body)
    assert await stored(price_app, TRADING_HOUR) == (FINAL_CLOSE, False)
    assert (tick.hour, tick.price_usd) == (TRADING_HOUR, FINAL_CLOSE)
    assert tick.as_of == datetime.fromtimestamp(TRADING_HOUR + 3600, UTC) <= datetime.fromtimestamp(later, UTC)


async def test_a_finished_hour_is_never_replaced(price_app, fake_provider) -> None:
    from price.domain import CandleRow

    hour = NEWEST_STORED - 5 * 3600
    before = await stored(price_app, hour)
    row = CandleRow(hour, Decimal(1), Decimal(2), Decimal(1), Decimal(2), Decimal(1))
    result = await price_app.service.store.store([row], "test")
    assert result.inserted == 0
    assert await stored(price_app, hour) == before
