"""Wires the portfolio service: settings, pool, broker, price client, outbox relay and the ops HTTP app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
import uvicorn
from contracts.notifications import Notifier
from contracts.observability import configure_logging
from contracts.rpc import RpcClient
from contracts.topology import QUEUES, ensure_topology
from faststream.rabbit import Channel, RabbitBroker
from prometheus_client import Gauge
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from portfolio import repository as repo
from portfolio.command_queue import CommandQueue
from portfolio.db import create_pool
from portfolio.http import build_http_app
from portfolio.market_data import HourlyOpens, PriceSource
from portfolio.messaging import OutboxRelay, WriteBatcher, attempt_policy, build_router
from portfolio.service import PortfolioService
from portfolio.settings import Settings
from portfolio.upkeep import Upkeep

log = structlog.get_logger()
RELAY_STOP_SECONDS = 10.0
"""How long shutdown waits for the outbox relay to finish its batch (unpublished rows stay for the next start)."""
DLQ_DEPTH = Gauge("bitfolio_dead_letter_queue_depth", "Messages parked in a dead-letter queue", ["queue"])


@dataclass
class PortfolioApp:
    settings: Settings
    service: PortfolioService
    broker: RabbitBroker
    relay: OutboxRelay
    writer: WriteBatcher
    prices: RpcClient
    notifier: Notifier
    commands: CommandQueue

    async def readiness(self) -> dict[str, bool]:
        try:
            database = await self.service.pool.fetchval("SELECT 1") == 1
        except Exception:
            database = False
        connection = getattr(self.broker, "_connection", None)
        return {"database": database, "broker": connection is not None and not connection.is_closed,
                "commands": self.commands.consuming}

    async def watch_dead_letters(self) -> None:
        """Expose each DLQ's depth on /metrics, so an operator sees poison messages pile up."""
        while True:
            for spec in QUEUES:
                depth = await self.prices.queue_depth(spec.dead_letter_queue)
                if depth is not None:
                    DLQ_DEPTH.labels(spec.dead_letter_queue).set(depth)
            await asyncio.sleep(15)

    async def learn_latest_price(self) -> None:
        """At start, take the latest price from the price service if no tick has been seen yet."""
        if await repo.market(self.service.pool) is not None:
            return
        latest = await self.service.prices.latest()
        if latest is not None:
            await repo.save_market(self.service.pool, latest.hour, latest.price_usd, latest.as_of)


async def build(settings: Settings) -> PortfolioApp:
    async for attempt in AsyncRetrying(stop=stop_after_delay(30), wait=wait_fixed(1), reraise=True):
        with attempt:
            await ensure_topology(settings.rabbit_url)
    pool = await create_pool(settings.asyncpg_dsn)
    prices = RpcClient(settings.rabbit_url, timeout=settings.price_timeout_seconds,
                       prefetch=settings.consumer_prefetch)
    notifier = Notifier(settings.rabbit_url)
    service = PortfolioService(pool, PriceSource(prices), notify=notifier.publish)
    if settings.price_replica:
        service.hours = HourlyOpens(service.prices)
    broker = RabbitBroker(settings.rabbit_url, logger=None,
                          default_channel=Channel(prefetch_count=settings.consumer_prefetch))
    relay = OutboxRelay(service, broker, linger_seconds=settings.price_request_linger_seconds)
    service.committed_outbox = relay.committed
    writer = WriteBatcher(service, relay, settings.write_batch_limit, settings.write_lanes,
                         settings.write_linger_seconds, settings.write_coalesce_seconds)
    broker.include_router(build_router(service, broker, writer, settings.consumer_max_attempts))
    commands = CommandQueue(settings.rabbit_url, service, broker, writer, attempt_policy(settings.consumer_max_attempts),
                            settings.consumer_prefetch)
    return PortfolioApp(settings, service, broker, relay, writer, prices, notifier, commands)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[PortfolioApp]:
    app = await build(settings)
    await app.prices.connect()
    await app.notifier.connect()
    await app.service.opens.load(app.service.pool)
    writer = asyncio.create_task(app.writer.run())
    await app.broker.start()
    await app.commands.start()
    relay = asyncio.create_task(app.relay.run())
    watcher = asyncio.create_task(app.watch_dead_letters())
    upkeep = asyncio.create_task(Upkeep(app.service).run())
    await app.learn_latest_price()
    try:
        yield app
    finally:
        upkeep.cancel()
        await asyncio.gather(upkeep, return_exceptions=True)
        await app.commands.stop()  # before the relay: what the last commands commit still leaves at once
        app.relay.stop()
        watcher.cancel()
        await asyncio.gather(asyncio.wait_for(relay, RELAY_STOP_SECONDS), watcher, return_exceptions=True)
        await app.broker.stop()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        if app.service.hours is not None:
            await app.service.hours.close()
        await app.prices.close()
        await app.notifier.close()
        await app.service.pool.close()


async def serve(settings: Settings) -> None:
    configure_logging("portfolio", settings.log_level)
    async with running(settings) as app:
        log.info("portfolio_service_started", http_port=settings.http_port)
        server = uvicorn.Server(uvicorn.Config(build_http_app(app.readiness), host=settings.http_host,
                                               port=settings.http_port, log_config=None, access_log=False))
        await server.serve()
