"""Wires the gateway: settings, database pool, the bus client, the event feed and the HTTP app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
import uvicorn
from contracts.observability import configure_logging
from contracts.rpc import RpcClient
from fastapi import FastAPI

from gateway.accounts import Accounts
from gateway.bus import Backend
from gateway.db import create_pool
from gateway.feed import EventFeed, every
from gateway.http import Gateway, build_app
from gateway.settings import Settings

log = structlog.get_logger()


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app; the database pool, the broker connections and the event feed open in its lifespan."""
    state: dict[str, object] = {}
    client = RpcClient(settings.rabbit_url, timeout=settings.request_timeout_seconds,
                       prefetch=settings.reply_prefetch)
    gateway = Gateway(settings, Accounts.create(settings, None), Backend(client))  # type: ignore[arg-type]
    revocations = gateway.accounts.revocations

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.asyncpg_dsn)
        gateway.accounts.pool = pool
        state["pool"] = pool
        await revocations.sync(pool)
        await client.connect()
        feed = EventFeed(settings.rabbit_url, gateway.reads, revocations.apply, lambda: revocations.sync(pool),
                         settings.feed_prefetch, f"gateway :{settings.http_port} event feed")
        await feed.start()
        revocations.announce = feed.announce
        syncing = asyncio.create_task(every(settings.revocation_sync_seconds, lambda: revocations.sync(pool)))
        log.info("gateway_started", http_port=settings.http_port)
        try:
            yield
        finally:
            syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncing
            revocations.announce = None
            await feed.close()
            await client.close()
            await pool.close()

    async def readiness() -> dict[str, bool]:
        pool = state.get("pool")
        try:
            database = pool is not None and await pool.fetchval("SELECT 1") == 1  # type: ignore[attr-defined]
        except Exception:
            database = False
        return {"database": bool(database), "broker": client.connected}

    return build_app(gateway, lifespan=lifespan, readiness=readiness)


def serve(settings: Settings) -> None:
    configure_logging("gateway", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None,
                access_log=False)
