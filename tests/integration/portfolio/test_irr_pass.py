"""A large portfolio's IRR is left to the upkeep's IRR pass, which stores the domain's figure and announces it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, GetPortfolio, ImportTransactions, PortfolioUpdated
from portfolio import handlers
from portfolio import repository as repo
from portfolio.domain import irr_at
from portfolio.market_data import PriceSource
from portfolio.projection import INLINE_IRR_TRADES
from portfolio.service import PortfolioService
from portfolio.upkeep import Upkeep

OWNER = "irr-pass"
START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
async def service(make_database):
    url = (await make_database("portfolio")).replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    await repo.save_market(pool, int(AS_OF.timestamp()) - 3600, Decimal(60000), AS_OF)
    yield PortfolioService(pool, PriceSource(None))
    await pool.close()


async def test_the_irr_pass_gives_a_large_portfolio_the_domains_irr_and_announces_it(service) -> None:
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id=OWNER, name="large"))
    portfolio_id = reply.result["portfolio_id"]
    trades = [(START + timedelta(days=n), Decimal(40000 + 10 * n)) for n in range(INLINE_IRR_TRADES + 1)]
    csv_text = "side,amount_btc,at,fee_usd,price_usd,note\n" + "".join(
        f"buy,0.01,{at.isoformat()},1,{price},\n" for at, price in trades)
    reply, _ = await handlers.handle_command(service, ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id,
                                                                         csv_text=csv_text))
    assert reply.ok and reply.result["imported"] == len(trades)
    pool = service.pool
    assert await pool.fetchval("SELECT irr_due FROM portfolios WHERE portfolio_id = $1", portfolio_id)
    published: list[PortfolioUpdated] = []

    async def notify(updates) -> None:
        published.extend(updates)
    service.notify = notify
    assert await Upkeep(service).refresh_irrs() == 1
    view, _ = await handlers.handle_command(service, GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    metrics = view.result["metrics"]
    flows = [(at, -(Decimal("0.01") * price + 1)) for at, price in trades]
    assert Decimal(metrics["irr_pct"]) == irr_at(flows, Decimal(metrics["current_value_usd"]), AS_OF)
    assert not await pool.fetchval("SELECT irr_due FROM portfolios WHERE portfolio_id = $1", portfolio_id)
    assert [(u.reason, u.metrics.irr_pct) for u in published] == [("irr_updated", Decimal(metrics["irr_pct"]))]
