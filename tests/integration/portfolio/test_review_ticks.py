"""Review findings on the tick path: which midnights a tick folds, and ticks that race writes of another copy."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, RecordTransaction
from contracts.prices import PriceTicked
from portfolio import handlers
from portfolio.replay import differences, rebuild
from portfolio.service import PortfolioService
from portfolio.unit_of_work import UnitOfWork

from tests.integration.portfolio.test_midnights import CRASH, CRASH_DAY, NORMAL, OWNER, ScriptedPrices, ok, tick


@pytest.fixture
async def service(make_database) -> PortfolioService:
    url = (await make_database("portfolio")).replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    yield PortfolioService(pool, ScriptedPrices(None))
    await pool.close()


def typed_buy(portfolio_id: str, at, price: Decimal = NORMAL) -> RecordTransaction:
    return RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal(1), at=at,
                             price_usd=price)


async def metrics(service: PortfolioService, portfolio_id: str) -> dict:
    return json.loads(await service.pool.fetchval("SELECT metrics::text FROM portfolios WHERE portfolio_id = $1",
                                                  portfolio_id))


async def test_a_tick_does_not_fold_a_midnight_that_came_before_the_portfolios_last_trade(service) -> None:
    # The 00:00 tick is handled after a trade at 00:30 (typed price): that midnight precedes every trade of the
    # portfolio, so it is no point of its index; replay (the tail after the last trade) leaves it out too.
    await tick(service, CRASH_DAY - timedelta(hours=1))
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    await ok(service, typed_buy(portfolio_id, CRASH_DAY + timedelta(minutes=30)))
    await tick(service, CRASH_DAY)  # opens at 20,000: the index would read 0.4 at a midnight before the buy
    assert Decimal((await metrics(service, portfolio_id))["max_drawdown_pct"]) == 0
    assert await differences(service.pool, await rebuild(service), None) == []


async def test_a_tick_that_waits_for_another_copys_write_uses_the_rows_that_write_committed(service) -> None:
    await tick(service, CRASH_DAY - timedelta(hours=10))
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    await ok(service, typed_buy(portfolio_id, CRASH_DAY - timedelta(hours=20)))
    async with service.pool.acquire() as connection:
        writing = connection.transaction()
        await writing.start()
        uow = UnitOfWork(connection)  # a copy's write, not committed yet: the portfolio's row is locked
        await handlers.handle_write(service, uow, typed_buy(portfolio_id, CRASH_DAY - timedelta(hours=15)))
        await uow.flush()
        ticking = asyncio.create_task(handlers.handle_alone(service, _tick_at(CRASH_DAY - timedelta(hours=9),
                                                                               Decimal("60000"))))
        await asyncio.sleep(0.5)  # the tick reaches the portfolio's row and waits
        assert not ticking.done()
        await writing.commit()
    await ticking
    current = await metrics(service, portfolio_id)
    assert Decimal(current["holdings_btc"]) == 2
    assert Decimal(current["current_value_usd"]) == 120000  # 2 BTC at the tick's price, not the 1 BTC it first saw
    assert await differences(service.pool, await rebuild(service), None) == []


async def test_a_write_batched_after_another_copys_tick_uses_that_ticks_price(service) -> None:
    await tick(service, CRASH_DAY - timedelta(hours=1))
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    await ok(service, typed_buy(portfolio_id, CRASH_DAY - timedelta(hours=5)))
    async with service.pool.acquire() as connection, connection.transaction():
        uow = UnitOfWork(connection)  # one batch of a copy: its first message reads the latest price
        await handlers.handle_write(service, uow, CreatePortfolio(owner_id=OWNER, name="other"))
        await tick(service, CRASH_DAY)  # another copy handles the midnight tick and commits meanwhile
        await handlers.handle_write(service, uow, typed_buy(portfolio_id, CRASH_DAY - timedelta(hours=4)))
        await uow.flush()
    current = await metrics(service, portfolio_id)
    assert current["priced_until"] == (CRASH_DAY + timedelta(hours=1)).isoformat()
    assert Decimal(current["max_drawdown_pct"]) == 60  # the crash midnight after both buys
    assert await differences(service.pool, await rebuild(service, portfolio_id), portfolio_id) == []


def _tick_at(hour, price: Decimal) -> PriceTicked:
    return PriceTicked(hour=int(hour.timestamp()), price_usd=price, open_usd=CRASH if hour == CRASH_DAY else price,
                       as_of=hour + timedelta(hours=1))

