"""A burst of price requests waits in RabbitMQ: the price service holds at most its prefetch of them at once."""

import asyncio
import threading
from datetime import UTC, datetime

import aio_pika
from contracts.prices import PriceRequested

from contracts import names
from tests.support.bus import listening

FIRST_2024_HOUR = 1704067200
GAP_START = FIRST_2024_HOUR + 1000 * 3600
GAP_HOURS = 24
BURST = 1000


async def publish_burst(rabbit_url: str, requests: list[PriceRequested]) -> None:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.EVENTS_EXCHANGE)
        await asyncio.gather(*(
            exchange.publish(aio_pika.Message(r.to_json(), message_id=r.message_id), routing_key=names.PRICE_REQUESTED)
            for r in requests))


async def waiting_in_queue(rabbit_url: str, queue: str) -> int:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def settled_count(rabbit_url: str, queue: str) -> int:
    """The ready count once the broker has stopped handing messages to the consumer."""
    previous = -1
    for _ in range(40):
        current = await waiting_in_queue(rabbit_url, queue)
        if current == previous:
            return current
        previous = current
        await asyncio.sleep(0.5)
    return previous


async def test_burst_stays_in_the_broker_beyond_the_prefetch(remove_candles, rabbit_url, price_app, fake_provider) -> None:
    """Every request needs the provider, which hangs: nothing is acked, so the service holds exactly what the broker
    handed it, and that must be its prefetch, not the whole burst."""
    await remove_candles(GAP_START, GAP_START + GAP_HOURS * 3600)
    fake_provider.fake.hold = threading.Event()
    requests = [PriceRequested(transaction_id=f"tx-{i}", portfolio_id="p-burst",
                               at=datetime.fromtimestamp(GAP_START + (i % GAP_HOURS) * 3600 + 60, UTC))
                for i in range(BURST)]
    prefetch = price_app.settings.consumer_prefetch
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        try:
            await publish_burst(rabbit_url, requests)
            waiting = await settled_count(rabbit_url, names.PRICE_REQUESTS_QUEUE)
        finally:
            fake_provider.fake.hold.set()
        held_by_the_service = BURST - waiting
        assert 0 < held_by_the_service <= prefetch, f"the service took {held_by_the_service} of {BURST} at once"
        answered = await answers.collect(BURST, timeout=60)
    assert {m.routing_key for m in answered} == {names.PRICE_RESOLVED}
    assert await waiting_in_queue(rabbit_url, names.PRICE_REQUESTS_QUEUE) == 0
