"""Shared pieces of the write benchmarks: the seed design's baseline, and a watcher of priced trades."""

import asyncio
import time

import aio_pika
import httpx
from contracts.portfolios import PortfolioUpdated

from contracts import names

CLIENTS, PER_CLIENT = 50, 20


async def seed_design_baseline(price_url: str) -> float:
    """tx/s when every transaction makes its own synchronous HTTP price call with a fresh client (the seed)."""
    async def one(n: int) -> None:
        async with httpx.AsyncClient() as client:
            (await client.get(f"{price_url}/prices/at/{1704067200 + n * 3600}")).raise_for_status()
    started = time.perf_counter()
    for start in range(0, CLIENTS * PER_CLIENT, CLIENTS):
        await asyncio.gather(*(one(n) for n in range(start, start + CLIENTS)))
    return CLIENTS * PER_CLIENT / (time.perf_counter() - started)


async def watch_priced(rabbit_url: str, priced: dict[str, "asyncio.Future[float]"]) -> aio_pika.abc.AbstractConnection:
    """Resolve each trade's future with the moment its portfolio.updated (transaction_priced) arrives, as the
    dashboard learns it; returns the connection, for the caller to close."""
    loop = asyncio.get_running_loop()

    async def on_update(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        update = PortfolioUpdated.from_json(message.body)
        if update.reason == "transaction_priced" and update.transaction_id:
            future = priced.setdefault(update.transaction_id, loop.create_future())
            if not future.done():
                future.set_result(time.perf_counter())

    connection = await aio_pika.connect(rabbit_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, names.PORTFOLIO_UPDATED_ANY_OWNER)
    await queue.consume(on_update, no_ack=True)
    return connection
