"""Wires the price service: settings, database pool, broker, HTTP app and background loops."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
import uvicorn
from contracts.observability import configure_logging
from contracts.topology import ensure_topology
from fastapi import FastAPI
from faststream.rabbit import Channel, RabbitBroker
from prometheus_client import Gauge
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from contracts import names
from price.db import create_pool
from price.handlers import PriceService, sync_newest
from price.http import build_http_app
from price.messaging import AnswerBatcher, build_router
from price.provider import CryptoCompareProvider, ProviderRefused, ProviderUnavailable
from price.repository import CandleStore
from price.settings import Settings

log = structlog.get_logger()
OUTBOX_DEPTH = Gauge("price_outbox_depth", "Events waiting in the price outbox")
RELAY_STOP_SECONDS = 10.0
SYNC_LOCK = "SELECT pg_try_advisory_lock(hashtext('bitfolio.price.sync'))"


async def first_of(*events: asyncio.Event) -> None:
    """Return once any of the events is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@dataclass
class PriceApp:
    settings: Settings
    service: PriceService
    broker: RabbitBroker
    answers: AnswerBatcher
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at shutdown: the relay finishes the batch in hand (a publish cancelled mid-call closes the channel)."""

    async def publish_outbox_row(self, routing_key: str, message_id: str, body: bytes) -> None:
        await self.broker.publish(body, exchange=names.EVENTS_EXCHANGE, routing_key=routing_key,
                                  message_id=message_id, content_type="application/json", persist=True)

    async def relay_outbox(self) -> None:
        """Publish outbox rows with confirms; several copies share the rows through SKIP LOCKED. Rows this process
        writes (a tick) leave at once; those of another process (an import, another copy) at the next poll."""
        store = self.service.store
        while not self.stopping.is_set():
            try:
                store.outbox_written.clear()
                if await store.drain_outbox(self.publish_outbox_row) == 0:
                    OUTBOX_DEPTH.set(await store.outbox_depth())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(first_of(self.stopping, store.outbox_written),
                                               self.settings.outbox_poll_seconds)
            except Exception:
                log.exception("outbox_relay_failed")
                await asyncio.sleep(1)

    async def sync_hourly(self) -> None:
        """Keep the newest candles; single-flight across copies through a Postgres advisory lock."""
        while True:
            try:
                async with self.service.store.pool.acquire() as connection:
                    if await connection.fetchval(SYNC_LOCK):
                        try:
                            new = await sync_newest(self.service)
                            log.info("price_sync_done", new_candles=new)
                        finally:
                            await connection.execute("SELECT pg_advisory_unlock(hashtext('bitfolio.price.sync'))")
            except (ProviderUnavailable, ProviderRefused) as error:
                log.warning("price_sync_failed", reason=str(error))
            except Exception:
                log.exception("price_sync_crashed")
            await asyncio.sleep(self.settings.sync_interval_seconds)

    async def readiness(self) -> dict[str, bool]:
        try:
            database = await self.service.store.pool.fetchval("SELECT 1") == 1
        except Exception:
            database = False
        connection = getattr(self.broker, "_connection", None)
        return {"database": database, "broker": connection is not None and not connection.is_closed}


async def build(settings: Settings) -> PriceApp:
    async for attempt in AsyncRetrying(stop=stop_after_delay(30), wait=wait_fixed(1), reraise=True):
        with attempt:
            await ensure_topology(settings.rabbit_url)
    pool = await create_pool(settings.asyncpg_dsn)
    provider = CryptoCompareProvider(
        settings.provider_base_url, settings.provider_api_key, attempts=settings.provider_attempts,
        backoff_seconds=settings.provider_backoff_seconds, timeout_seconds=settings.provider_timeout_seconds,
    )
    service = PriceService(CandleStore(pool), provider)
    broker = RabbitBroker(settings.rabbit_url, logger=None,
                          default_channel=Channel(prefetch_count=settings.consumer_prefetch))
    answers = AnswerBatcher(service)
    broker.include_router(build_router(service, broker, answers, settings.consumer_max_attempts))
    return PriceApp(settings, service, broker, answers)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[PriceApp]:
    """The consumers, the outbox relay and (when enabled) the hourly sync, for as long as the context lasts."""
    app = await build(settings)
    log.info("candles_loaded", candles=await app.service.store.load())
    answering = asyncio.create_task(app.answers.run())
    await app.broker.start()
    relay = asyncio.create_task(app.relay_outbox())
    tasks = [asyncio.create_task(app.sync_hourly())] if settings.sync_enabled else []
    try:
        yield app
    finally:
        app.stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(asyncio.wait_for(relay, RELAY_STOP_SECONDS), *tasks, return_exceptions=True)
        await app.broker.stop()
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)
        if app.service.provider is not None:
            await app.service.provider.close()
        await app.service.store.pool.close()


def http_app(app: PriceApp) -> FastAPI:
    return build_http_app(app.service, app.readiness, app.settings.range_cap_hours)


async def serve(settings: Settings) -> None:
    configure_logging("price", settings.log_level)
    async with running(settings) as app:
        log.info("price_service_started", http_port=settings.http_port)
        server = uvicorn.Server(uvicorn.Config(http_app(app), host=settings.http_host, port=settings.http_port,
                                               log_config=None, access_log=False))
        await server.serve()
