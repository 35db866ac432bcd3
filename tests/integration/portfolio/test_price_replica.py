"""The replica of hourly opens: a trade at an hour the portfolio service has fetched is priced as it is recorded,
with no price.requested, at the same price the price service gives; a replay rebuilds the same projection."""

import asyncio
from decimal import Decimal

import pytest
from contracts.portfolios import GetPortfolio, ImportTransactions, PortfolioUpdated, RecordTransaction
from contracts.prices import PriceRequested
from portfolio.settings import Settings as PortfolioSettings

from contracts import decode, names
from tests.integration.portfolio.test_portfolio_flow import OWNER, create, opens, priced, unix
from tests.integration.portfolio.test_replay import replay_cli
from tests.support.bus import listening


@pytest.fixture
async def portfolio_settings(make_database, rabbit_url: str) -> PortfolioSettings:
    """As deployed: the replica on (the other portfolio tests turn it off to exercise price.requested)."""
    return PortfolioSettings(env="test", database_url=await make_database("portfolio"), rabbit_url=rabbit_url,
                             price_replica=True)


async def replica_knows(portfolio_app, at: str) -> None:
    """Wait until the replica has fetched the hours around `at` (the fetch a first miss started)."""
    hours = portfolio_app.service.hours
    for _ in range(200):
        if hours.fetching is None and hours.covered(unix(at) // 3600 * 3600):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the replica never fetched the hours around {at}")


def buy(portfolio_id: str, at: str, side: str = "buy", amount: str = "0.1") -> RecordTransaction:
    return RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount), at=at)


async def test_a_trade_at_a_fetched_hour_is_priced_as_it_is_recorded_without_a_price_request(
        commands, portfolio_app, rabbit_url) -> None:
    portfolio_id = await create(commands, name="Replica")
    prices = opens()
    async with listening(rabbit_url, names.PRICE_REQUESTED) as requests:
        first = await commands.ok(buy(portfolio_id, "2024-03-01T10:15:00+00:00"))
        assert first["status"] == "pending"  # a miss: asked through price.requested, and the hours fetched
        await requests.next()
    await priced(commands, portfolio_id)
    await replica_knows(portfolio_app, "2024-03-20T00:00:00+00:00")

    async with listening(rabbit_url, names.PRICE_REQUESTED) as requests, \
            listening(rabbit_url, names.portfolio_updated_key(OWNER)) as updates:
        second = await commands.ok(buy(portfolio_id, "2024-03-20T23:59:59+00:00"))
        sold = await commands.ok(buy(portfolio_id, "2024-03-21T00:00:00+00:00", side="sell", amount="0.05"))
        heard = [PortfolioUpdated.from_json(m.body) for m in await updates.collect(2)]
        assert await requests.quiet_for(0.5), "no price.requested for hours the replica knows"
        assert await updates.quiet_for(0.3), "one portfolio.updated a trade"
    for trade, at in ((second, "2024-03-20T23:00:00+00:00"), (sold, "2024-03-21T00:00:00+00:00")):
        assert trade["status"] == "priced" and trade["price_source"] == "market"
        assert Decimal(trade["price_usd"]) == prices[unix(at)] and trade["price_hour"] == unix(at)
        assert trade["metrics"] is not None
    assert Decimal(second["metrics"]["cost_usd"]) == Decimal("0.1") * prices[unix("2024-03-20T23:00:00+00:00")]
    assert [(u.reason, u.transaction_id) for u in heard] == [("transaction_priced", second["transaction_id"]),
                                                              ("transaction_priced", sold["transaction_id"])]
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert view["metrics"]["pending_count"] == 0 and view["metrics"]["transaction_count"] == 3
    assert Decimal(view["metrics"]["holdings_btc"]) == Decimal("0.15")
    assert view["version"] == heard[-1].version


async def test_an_import_of_fetched_hours_is_priced_in_its_own_transaction_and_replays_to_the_same_figures(
        commands, portfolio_app, portfolio_settings, rabbit_url) -> None:
    portfolio_id = await create(commands, name="Replica import")
    await commands.ok(buy(portfolio_id, "2024-06-01T00:00:00+00:00"))  # a miss fetches June onwards
    await priced(commands, portfolio_id)
    await replica_knows(portfolio_app, "2024-06-30T00:00:00+00:00")
    csv_text = ("side,amount_btc,at,fee_usd\n"
                "buy,0.2,2024-06-10T05:30:00Z,1\nsell,0.1,2024-06-12T18:00:00Z,2\nbuy,0.3,2024-06-02T01:00:00Z,0\n")
    async with listening(rabbit_url, names.PRICE_REQUESTED) as requests:
        report = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=csv_text))
        assert await requests.quiet_for(0.5)
    assert report["imported"] == 3
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    prices = opens()
    invested = (Decimal("0.1") * prices[unix("2024-06-01T00:00:00+00:00")]
                + Decimal("0.2") * prices[unix("2024-06-10T05:00:00+00:00")] + 1
                + Decimal("0.3") * prices[unix("2024-06-02T01:00:00+00:00")])
    assert view["metrics"]["pending_count"] == 0 and Decimal(view["metrics"]["invested_usd"]) == invested
    # a file with one hour the replica does not know asks for every market price in one request (one fold)
    mixed = "side,amount_btc,at,fee_usd\nbuy,0.1,2024-06-20T05:30:00Z,0\nbuy,0.1,2024-01-05T05:30:00Z,0\n"
    async with listening(rabbit_url, names.PRICE_REQUESTED) as requests:
        await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=mixed))
        asked = decode(PriceRequested, (await requests.next()).body)
    assert len(asked.items) == 2
    await priced(commands, portfolio_id)
    check = await replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
