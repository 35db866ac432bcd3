"""Fixtures for the portfolio service: its migrated database, the real price service beside it, a command client."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from contracts.envelope import Message
from contracts.rpc import RpcClient
from portfolio.main import PortfolioApp, running
from portfolio.settings import Settings as PortfolioSettings
from price.cli import import_csv
from price.main import running as price_running
from price.settings import Settings as PriceSettings

from contracts import Reply


@pytest.fixture(scope="session")
def rabbit_url(make_vhost) -> str:
    """The portfolio tests' own vhost, shared with the price service they run beside."""
    return make_vhost("portfolio")


@pytest.fixture(scope="session")
async def price_service(make_database, rabbit_url: str, shared_candles_csv: Path):
    """The real price service with the shared 2024 candles, for the whole session."""
    settings = PriceSettings(env="test", database_url=await make_database("price"), rabbit_url=rabbit_url,
                             sync_enabled=False, provider_base_url="http://127.0.0.1:9", provider_attempts=1)
    await import_csv(settings, shared_candles_csv, quiet=True)
    async with price_running(settings) as app:
        yield app


@pytest.fixture
async def portfolio_settings(make_database, rabbit_url: str) -> PortfolioSettings:
    """Every trade asks through price.requested, which these tests exercise (test_price_replica turns the replica of
    hourly opens on, as deployed)."""
    return PortfolioSettings(env="test", database_url=await make_database("portfolio"), rabbit_url=rabbit_url,
                             price_replica=False)


@pytest.fixture
async def portfolio_app(portfolio_settings, price_service) -> AsyncIterator[PortfolioApp]:
    async with running(portfolio_settings) as app:
        yield app


class Commands:
    """Sends commands as the gateway does and unwraps the replies."""

    def __init__(self, client: RpcClient) -> None:
        self.client = client

    async def send(self, command: Message) -> Reply:
        return await self.client.call(command)

    async def ok(self, command: Message) -> dict:
        reply = await self.send(command)
        assert reply.ok, reply.error
        return reply.result


@pytest.fixture
async def commands(rabbit_url: str, portfolio_app) -> AsyncIterator[Commands]:
    client = RpcClient(rabbit_url, timeout=15)
    await client.connect()
    yield Commands(client)
    await client.close()


def money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
