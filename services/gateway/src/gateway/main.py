"""Wires the gateway: settings, database pool, the bus client and the HTTP app."""

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
from gateway.http import Gateway, build_app
from gateway.settings import Settings

log = structlog.get_logger()


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app; the database pool and broker connection open in its lifespan."""
    state: dict[str, object] = {}
    client = RpcClient(settings.rabbit_url, timeout=settings.request_timeout_seconds,
                       prefetch=settings.reply_prefetch)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.asyncpg_dsn)
        gateway.accounts.pool = pool
        state["pool"] = pool
        await client.connect()
        log.info("gateway_started", http_port=settings.http_port)
        try:
            yield
        finally:
            await client.close()
            await pool.close()

    async def readiness() -> dict[str, bool]:
        pool = state.get("pool")
        try:
            database = pool is not None and await pool.fetchval("SELECT 1") == 1  # type: ignore[attr-defined]
        except Exception:
            database = False
        return {"database": bool(database), "broker": client.connected}

    gateway = Gateway(settings, Accounts.create(settings, None), Backend(client))  # type: ignore[arg-type]
    return build_app(gateway, lifespan=lifespan, readiness=readiness)


def serve(settings: Settings) -> None:
    configure_logging("gateway", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None,
                access_log=False)
