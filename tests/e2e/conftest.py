"""E2E fixtures: the whole system, and HTTP clients logged in as fresh users."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pytest

from tests.support.system import System, system  # noqa: F401  (the session fixture)

PASSWORD = "a long and unusual passphrase 42"


@dataclass
class Account:
    email: str
    user_id: str
    access_token: str
    refresh_token: str
    client: httpx.AsyncClient


async def sign_up(base_url: str, email: str | None = None) -> Account:
    email = email or f"user-{uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as anonymous:
        registered = await anonymous.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        tokens = (await anonymous.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    client = httpx.AsyncClient(base_url=base_url, timeout=20,
                               headers={"Authorization": f"Bearer {tokens['access_token']}"})
    return Account(email, registered.json()["id"], tokens["access_token"], tokens["refresh_token"], client)


@pytest.fixture
async def alice(system: System) -> AsyncIterator[Account]:  # noqa: F811
    account = await sign_up(system.gateway_url)
    yield account
    await account.client.aclose()


@pytest.fixture
async def bob(system: System) -> AsyncIterator[Account]:  # noqa: F811
    account = await sign_up(system.gateway_url)
    yield account
    await account.client.aclose()


async def wait_for(check, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("the condition was not met in time")
        await asyncio.sleep(0.1)
