"""portfolio.updated is a notification: routed by owner, transient, and a lost one is healed by the next read."""

import asyncio
from decimal import Decimal

import aio_pika
from contracts.portfolios import CreatePortfolio, GetPortfolio, PortfolioUpdated, RecordTransaction

from contracts import names
from tests.support.bus import listening

OWNER, STRANGER = "owner-notified", "owner-elsewhere"


async def record(commands, portfolio_id: str, at: str) -> dict:
    return await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                               amount_btc=Decimal("0.1"), at=at))


async def test_updates_reach_only_their_owners_binding_and_are_transient(commands, rabbit_url) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="routed")))["portfolio_id"]
    async with listening(rabbit_url, names.portfolio_updated_key(OWNER)) as mine, \
            listening(rabbit_url, names.portfolio_updated_key(STRANGER)) as theirs:
        recorded = await record(commands, portfolio_id, "2024-02-01T10:00:00+00:00")
        first, second = await mine.collect(2)  # recorded (pending), then priced
        assert await theirs.quiet_for(1.0)
    for message in (first, second):
        assert message.routing_key == names.portfolio_updated_key(OWNER)
        assert message.delivery_mode == aio_pika.DeliveryMode.NOT_PERSISTENT
    updates = [PortfolioUpdated.from_json(m.body) for m in (first, second)]
    assert [(u.reason, u.transaction_id) for u in updates] == [
        ("transaction_recorded", recorded["transaction_id"]), ("transaction_priced", recorded["transaction_id"])]


async def test_a_notification_lost_on_the_way_is_healed_by_the_next_read(commands, rabbit_url, portfolio_app) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="healed")))["portfolio_id"]
    notifier = portfolio_app.notifier
    async with listening(rabbit_url, names.portfolio_updated_key(OWNER)) as updates:
        await notifier.close()  # the notifications of the next write cannot leave: they are dropped, not queued
        dropped = notifier.dropped
        lost = await record(commands, portfolio_id, "2024-02-02T10:00:00+00:00")
        view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
        while view["metrics"]["pending_count"]:  # the trade is priced all the same
            await asyncio.sleep(0.05)
            view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
        assert notifier.dropped >= dropped + 1
        assert await updates.quiet_for(1.0)  # the live reader heard nothing of that write …
        # … and the next read shows it, at the version the lost notification carried (or later)
        assert view["metrics"]["transaction_count"] == 1 and Decimal(view["metrics"]["invested_usd"]) > 0
        lost_version = view["version"]
        await notifier.connect()
        await record(commands, portfolio_id, "2024-02-03T10:00:00+00:00")
        healed = PortfolioUpdated.from_json((await updates.next()).body)
    assert lost["transaction_id"] and healed.version > lost_version
    assert healed.metrics is not None and healed.metrics.transaction_count == 2
