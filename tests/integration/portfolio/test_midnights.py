"""Max drawdown sees every midnight: across a catch-up tick, before the 00:00 candle exists, and after an outage."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, GetPortfolio, RecordTransaction
from contracts.prices import Candle, PriceRange, PriceTicked
from portfolio import handlers
from portfolio import repository as repo
from portfolio.market_data import PriceSource
from portfolio.replay import differences, rebuild
from portfolio.service import PortfolioService
from portfolio.upkeep import Upkeep

OWNER = "midnights"
CRASH_DAY = datetime(2024, 3, 2, tzinfo=UTC)
NORMAL, CRASH = Decimal("50000"), Decimal("20000")


@dataclass
class ScriptedPrices(PriceSource):
    """A price service whose newest candle and reachability the test sets; 50,000 everywhere but the crash day."""

    newest: datetime = datetime(2024, 12, 31, tzinfo=UTC)
    reachable: bool = True
    asked: list[tuple[int, int]] = field(default_factory=list)

    async def range(self, start: int, end: int, step: str) -> PriceRange | None:
        self.asked.append((start, end))
        if not self.reachable:
            return None
        seconds = 3600 if step == "hour" else 86400
        hours = [t for t in range(-(-start // seconds) * seconds, min(end, int(self.newest.timestamp())) + 1, seconds)]
        return PriceRange(start=start, end=end, step=step, candles=[
            Candle(hour=t, open=CRASH if t == int(CRASH_DAY.timestamp()) else NORMAL, high=NORMAL, low=CRASH,
                   close=NORMAL, volume=Decimal(1)) for t in hours])


@pytest.fixture
async def service(make_database) -> PortfolioService:
    url = (await make_database("portfolio")).replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    yield PortfolioService(pool, ScriptedPrices(None))
    await pool.close()


async def ok(service: PortfolioService, command) -> dict:
    reply, _ = await handlers.handle_command(service, command)
    assert reply.ok, reply.error
    return reply.result


async def buy(service: PortfolioService, portfolio_id: str, at: datetime) -> None:
    await ok(service, RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                        amount_btc=Decimal(1), at=at, price_usd=NORMAL))


async def tick(service: PortfolioService, hour: datetime) -> None:
    await handlers.handle_alone(service, PriceTicked(
        hour=int(hour.timestamp()), price_usd=NORMAL, open_usd=CRASH if hour == CRASH_DAY else NORMAL,
        as_of=hour + timedelta(hours=1)))


async def drawdown(service: PortfolioService, portfolio_id: str) -> Decimal:
    view = await ok(service, GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    return Decimal(view["metrics"]["max_drawdown_pct"])


async def assert_replay_agrees(service: PortfolioService) -> None:
    assert await differences(service.pool, await rebuild(service), None) == []


async def test_a_catch_up_tick_over_midnight_folds_that_midnight_into_the_drawdown(service) -> None:
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    await tick(service, CRASH_DAY - timedelta(hours=2))
    await buy(service, portfolio_id, CRASH_DAY - timedelta(hours=5))
    assert await drawdown(service, portfolio_id) == 0
    await tick(service, CRASH_DAY + timedelta(hours=3))  # the sync caught up four hours at once, over 00:00
    assert await drawdown(service, portfolio_id) == Decimal(60)  # I fell to 20,000 / 50,000 at midnight
    await assert_replay_agrees(service)


async def test_a_midnight_not_yet_in_the_data_is_asked_again_not_cached_as_missing(service) -> None:
    prices: ScriptedPrices = service.prices  # type: ignore[assignment]
    prices.newest = CRASH_DAY - timedelta(hours=1)  # the 00:00 candle does not exist yet
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    await repo.save_market(service.pool, int((CRASH_DAY - timedelta(hours=1)).timestamp()), NORMAL, CRASH_DAY)
    await buy(service, portfolio_id, CRASH_DAY - timedelta(hours=5))
    await buy(service, portfolio_id, CRASH_DAY + timedelta(hours=6))  # a typed price ahead of the data
    assert CRASH_DAY not in service.opens.known
    assert await service.pool.fetchval("SELECT count(*) FROM daily_opens WHERE day = $1", CRASH_DAY) == 0
    prices.newest = CRASH_DAY + timedelta(hours=10)
    service.opens.asked_again_at.clear()  # as after ASK_AGAIN_SECONDS
    await Upkeep(service, lambda: None).repair_ledgers()
    assert service.opens.known[CRASH_DAY] == CRASH
    assert await drawdown(service, portfolio_id) == Decimal(60)
    await assert_replay_agrees(service)


async def test_an_unreachable_price_service_leaves_the_ledger_marked_and_it_is_repaired_later(service) -> None:
    prices: ScriptedPrices = service.prices  # type: ignore[assignment]
    await repo.save_market(service.pool, int((CRASH_DAY + timedelta(days=3)).timestamp()), NORMAL,
                           CRASH_DAY + timedelta(days=3, hours=1))
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="p")))["portfolio_id"]
    prices.reachable = False
    await buy(service, portfolio_id, CRASH_DAY - timedelta(days=2))
    await buy(service, portfolio_id, CRASH_DAY + timedelta(days=1))
    repair_from = await service.pool.fetchval("SELECT repair_from FROM portfolios WHERE portfolio_id = $1",
                                              portfolio_id)
    assert repair_from == CRASH_DAY - timedelta(days=2)
    assert await drawdown(service, portfolio_id) == 0  # the crash midnight is unknown so far
    prices.reachable, prices.quiet_until = True, 0.0
    service.opens.asked_again_at.clear()
    await Upkeep(service, lambda: None).repair_ledgers()
    assert await service.pool.fetchval("SELECT repair_from FROM portfolios WHERE portfolio_id = $1",
                                       portfolio_id) is None
    assert await drawdown(service, portfolio_id) == Decimal(60)
    await assert_replay_agrees(service)
