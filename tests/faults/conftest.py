"""Fault-suite fixtures: the whole system, and direct access to the portfolio database to count what landed."""

from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio
from contracts.rpc import RpcClient

from tests.support.system import System, system  # noqa: F401  (the session fixture)


@pytest.fixture
async def commands(system: System) -> AsyncIterator[RpcClient]:  # noqa: F811
    client = RpcClient(system.rabbit_url, timeout=30)
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def portfolio_db(system: System) -> AsyncIterator[asyncpg.Pool]:  # noqa: F811
    pool = await asyncpg.create_pool(system.database_urls["portfolio"].replace("+asyncpg", ""), min_size=1,
                                     max_size=2)
    yield pool
    await pool.close()


async def new_portfolio(commands: RpcClient, owner: str) -> str:
    reply = await commands.call(CreatePortfolio(owner_id=owner, name="fault target", goal_usd=Decimal(1)))
    assert reply.ok, reply.error
    return str(reply.result["portfolio_id"])
