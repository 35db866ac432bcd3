"""The gateway's HTTP app in process, over its real (migrated) database; the bus is not needed for accounts."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from contracts.rpc import RpcClient
from gateway.accounts import Accounts
from gateway.bus import Backend
from gateway.db import create_pool
from gateway.http import Gateway, build_app
from gateway.settings import Settings

PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
async def gateway_settings(make_database) -> Settings:
    return Settings(env="test", database_url=await make_database("gateway"), trusted_proxies=["10.0.0.5"])


@pytest.fixture
async def gateway_client(gateway_settings: Settings) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Factory: `gateway_client(peer="10.0.0.5", **settings_overrides)` an HTTP client of a fresh app."""
    pool = await create_pool(gateway_settings.asyncpg_dsn)
    clients: list[httpx.AsyncClient] = []

    def make(peer: str = "127.0.0.1", **overrides: Any) -> httpx.AsyncClient:
        settings = gateway_settings.model_copy(update=overrides)
        gateway = Gateway(settings, Accounts.create(settings, pool), Backend(RpcClient(settings.rabbit_url)))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(build_app(gateway), client=(peer, 40000)),
                                   base_url="http://gateway")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    await pool.close()
