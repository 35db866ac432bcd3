"""Fixtures for the price service: a migrated database with the shared 2024 candles, a fake provider, the service."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from price.cli import import_csv
from price.main import PriceApp, running
from price.settings import Settings

from tests.support.fake_cryptocompare import FakeCryptoCompare, RunningFake


@pytest.fixture
def fake_provider() -> Iterator[RunningFake]:
    running_fake = FakeCryptoCompare(first_real_hour=1704063600).start()
    yield running_fake
    running_fake.stop()


@pytest.fixture(scope="session")
def rabbit_url(make_vhost) -> str:
    """The price tests' own vhost: no other running service consumes their queues."""
    return make_vhost("price")


@pytest.fixture
async def price_settings(make_database, rabbit_url: str, fake_provider: RunningFake, shared_candles_csv: Path
                         ) -> Settings:
    settings = Settings(
        env="test", database_url=await make_database("price"), rabbit_url=rabbit_url, sync_enabled=False,
        provider_base_url=fake_provider.url, provider_backoff_seconds=0.01, provider_attempts=3,
    )
    read, inserted, errors = await import_csv(settings, shared_candles_csv, quiet=True)
    assert (read, inserted, errors) == (6115, 6115, [])
    return settings


@pytest.fixture
async def price_app(price_settings: Settings) -> AsyncIterator[PriceApp]:
    async with running(price_settings) as app:
        yield app


@pytest.fixture
def remove_candles(price_app: PriceApp) -> Callable[[int, int], Awaitable[None]]:
    """Make a gap in the stored data: the candles of hours first ≤ hour < end, from the database and from the
    running service's memory (which holds every finished candle it read at start)."""
    async def remove(first: int, end: int) -> None:
        await price_app.service.store.pool.execute("DELETE FROM candles WHERE hour >= $1 AND hour < $2", first, end)
        for hour in range(first, end, 3600):
            price_app.service.store._cache.pop(hour, None)
    return remove
