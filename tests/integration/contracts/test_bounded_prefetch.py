"""Every consumer outside the FastStream services holds a bounded number of deliveries: the gateway's (and the
portfolio service's) reply queue and the web's live updates. A burst beyond it waits in RabbitMQ."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import aio_pika
from bitfolio_web.live import LiveUpdates
from contracts.errors import Reply
from contracts.prices import PriceTicked
from contracts.rpc import RpcClient

from contracts import names

BURST = 500
PREFETCH = 7


async def waiting_in(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    """Messages ready in `queue` once the broker has stopped handing them out (it no longer changes); an exclusive
    queue can only be looked at through its owner's connection."""
    async with connection.channel() as channel:
        previous = -1
        for _ in range(40):
            current = int((await channel.declare_queue(queue, passive=True)).declaration_result.message_count or 0)
            if current == previous:
                return current
            previous = current
            await asyncio.sleep(0.3)
        return previous


async def publish_burst(rabbit_url: str, exchange_name: str, routing_key: str, bodies: list[bytes],
                        **properties: object) -> None:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = channel.default_exchange if exchange_name == "" else await channel.get_exchange(exchange_name)
        await asyncio.gather(*(exchange.publish(aio_pika.Message(body, **properties), routing_key=routing_key)  # type: ignore[arg-type]
                               for body in bodies))


class SlowRpcClient(RpcClient):
    """An RPC client whose reply handling waits on a gate, as a busy process would."""

    gate = asyncio.Event()
    handled = 0

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await self.gate.wait()
        type(self).handled += 1
        await super()._on_reply(message)


async def test_rpc_reply_burst_beyond_the_prefetch_waits_in_the_broker(rabbit_url: str) -> None:
    client = SlowRpcClient(rabbit_url, prefetch=PREFETCH)
    SlowRpcClient.gate = asyncio.Event()
    await client.connect()
    try:
        stray = Reply.failure(None, "unavailable", "a late reply").to_json()
        await publish_burst(rabbit_url, "", client._reply_queue_name, [stray] * BURST, correlation_id="gone")
        waiting = await waiting_in(client._connection, client._reply_queue_name)
        assert BURST - waiting == PREFETCH, f"the client took {BURST - waiting} of {BURST} at once"
        SlowRpcClient.gate.set()
        for _ in range(100):
            if SlowRpcClient.handled == BURST:
                break
            await asyncio.sleep(0.1)
        assert SlowRpcClient.handled == BURST
    finally:
        await client.close()


async def test_live_update_burst_beyond_the_prefetch_waits_in_the_broker(rabbit_url: str) -> None:
    live = LiveUpdates(rabbit_url, prefetch=PREFETCH)
    gate = asyncio.Event()
    seen: list[PriceTicked] = []

    async def slow_page(tick: PriceTicked) -> None:
        await gate.wait()
        seen.append(tick)

    live.watch_ticks(slow_page)
    await live.start()
    try:
        for _ in range(100):
            if live.connected:
                break
            await asyncio.sleep(0.05)
        assert live.queue_name is not None
        ticks = [PriceTicked(hour=1704067200 + i * 3600, price_usd=Decimal("42000.5"), open_usd=Decimal("42000"),
                             as_of=datetime.fromtimestamp(1704067200 + (i + 1) * 3600, UTC)).to_json()
                 for i in range(BURST)]
        await publish_burst(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_TICKED, ticks)
        waiting = await waiting_in(live._connection, live.queue_name)
        assert BURST - waiting == PREFETCH, f"the web process took {BURST - waiting} of {BURST} at once"
        gate.set()
        for _ in range(100):
            if len(seen) == BURST:
                break
            await asyncio.sleep(0.1)
        assert len(seen) == BURST
    finally:
        await live.stop()
