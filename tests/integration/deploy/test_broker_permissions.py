"""deploy/rabbitmq/definitions.json on a real broker: each service can do its own work and no more."""

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused
from contracts.rpc import RpcClient
from contracts.topology import ensure_topology

from contracts import names
from tests.support.infrastructure import ROOT, RUN_ID

DEFINITIONS = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def service_urls(rabbit_url: str) -> Iterator[dict[str, str]]:
    """A fresh vhost with one user per service (suffixed by run), holding the deploy's permissions."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is needed to create the test users")
    vhost, host = f"bitfolio_perm_{RUN_ID}", urlsplit(rabbit_url).netloc.split("@")[-1]
    rabbitmqctl("add_vhost", vhost)
    urls = {}
    for grant in DEFINITIONS["permissions"]:
        user = f"{grant['user']}_{RUN_ID}"
        rabbitmqctl("add_user", user, "test-password")
        rabbitmqctl("set_permissions", "-p", vhost, user, grant["configure"], grant["write"], grant["read"])
        urls[grant["user"]] = f"amqp://{user}:test-password@{host}/{quote(vhost, safe='')}"
    for topic in DEFINITIONS["topic_permissions"]:
        rabbitmqctl("set_topic_permissions", "-p", vhost, f"{topic['user']}_{RUN_ID}", topic["exchange"],
                    topic["write"], topic["read"])
    yield urls
    rabbitmqctl("delete_vhost", vhost)
    for grant in DEFINITIONS["permissions"]:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", f"{grant['user']}_{RUN_ID}"], capture_output=True)


async def publish(url: str, exchange: str, routing_key: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = (channel.default_exchange if exchange == "" else
                  await channel.get_exchange(exchange, ensure=False))
        await target.publish(aio_pika.Message(b"{}"), routing_key=routing_key)
        await channel.close()


async def test_price_and_portfolio_can_declare_the_topology(service_urls: dict[str, str]) -> None:
    await ensure_topology(service_urls["price"])
    await ensure_topology(service_urls["portfolio"])


async def test_gateway_and_portfolio_can_open_their_reply_queues(service_urls: dict[str, str]) -> None:
    await ensure_topology(service_urls["price"])
    for user in ("gateway", "portfolio"):
        client = RpcClient(service_urls[user])
        await client.connect()
        await client.close()


async def test_the_dashboard_can_subscribe_to_updates_and_ticks(service_urls: dict[str, str]) -> None:
    await ensure_topology(service_urls["price"])
    connection = await aio_pika.connect(service_urls["web"])
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, names.portfolio_updated_key("0123abcd"))  # one owner with a page open
        await queue.bind(exchange, names.PRICE_TICKED)


async def test_only_the_gateway_may_send_a_transaction_command(service_urls: dict[str, str]) -> None:
    await ensure_topology(service_urls["price"])
    await publish(service_urls["gateway"], names.COMMANDS_EXCHANGE, names.TRANSACTION_RECORD)
    for user in ("web", "price", "portfolio"):
        with pytest.raises(ChannelAccessRefused):
            await publish(service_urls[user], names.COMMANDS_EXCHANGE, names.TRANSACTION_RECORD)


async def test_each_service_publishes_its_own_events_only(service_urls: dict[str, str]) -> None:
    await ensure_topology(service_urls["price"])
    await publish(service_urls["price"], names.EVENTS_EXCHANGE, names.PRICE_TICKED)
    await publish(service_urls["portfolio"], names.EVENTS_EXCHANGE, names.portfolio_updated_key("0123abcd"))
    await publish(service_urls["portfolio"], names.COMMANDS_EXCHANGE, names.PRICE_RANGE)
    await publish(service_urls["price"], "", "rpc.reply.0123abcd")  # replies go through the default exchange
    with pytest.raises(ChannelAccessRefused):
        await publish(service_urls["price"], names.EVENTS_EXCHANGE, names.portfolio_updated_key("0123abcd"))
    with pytest.raises(ChannelAccessRefused):
        await publish(service_urls["web"], names.EVENTS_EXCHANGE, names.PRICE_TICKED)


async def test_the_gateway_runs_its_event_feed_and_announces_revocations_only(service_urls: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from contracts.portfolios import PortfolioUpdated
    from gateway.feed import EventFeed
    from gateway.reads import PortfolioReads

    await ensure_topology(service_urls["price"])
    reads = PortfolioReads(None, 10, 0)  # type: ignore[arg-type]

    async def nothing() -> None:
        return None

    feed = EventFeed(service_urls["gateway"], reads, lambda _: None, nothing)
    await feed.start()
    assert reads.live
    deleted = PortfolioUpdated(owner_id="o", portfolio_id="p", version=2, reason="deleted", deleted=True,
                               occurred_at=datetime.now(UTC))
    connection = await aio_pika.connect(service_urls["portfolio"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.EVENTS_EXCHANGE, ensure=False)
        await exchange.publish(aio_pika.Message(deleted.to_json()), routing_key=names.portfolio_updated_key("o"))
    for _ in range(100):
        if reads.model.get("p") is not None:
            break
        await asyncio.sleep(0.05)
    assert reads.model.get("p") is not None, "the feed received the portfolio service's event"
    await feed.close()
    await publish(service_urls["gateway"], names.EVENTS_EXCHANGE, names.ACCESS_REVOKED)
    with pytest.raises(ChannelAccessRefused):
        await publish(service_urls["gateway"], names.EVENTS_EXCHANGE, names.portfolio_updated_key("o"))
