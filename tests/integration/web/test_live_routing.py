"""A web process binds only the owners with a page open: it receives their updates and none of anyone else's."""

import asyncio

from bitfolio_web.live import LiveUpdates
from contracts.notifications import Notifier
from contracts.portfolios import PortfolioUpdated
from contracts.topology import ensure_topology

OPEN, CLOSED = "owner-with-a-page", "owner-without-a-page"


def update(owner_id: str, version: int) -> PortfolioUpdated:
    return PortfolioUpdated(owner_id=owner_id, portfolio_id=f"p-{owner_id}", version=version, reason="test")


async def connected(live: LiveUpdates) -> None:
    for _ in range(200):
        if live.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the live feed did not connect")


async def test_the_web_receives_the_updates_of_owners_with_an_open_page_and_no_others(make_vhost) -> None:
    rabbit_url = make_vhost("web-live")
    await ensure_topology(rabbit_url)
    live, notifier = LiveUpdates(rabbit_url), Notifier(rabbit_url)
    delivered: list[str] = []  # every routing key that reaches the process, whether a page wants it or not
    on_message = live._on_message

    async def counting(message) -> None:
        delivered.append(message.routing_key)
        await on_message(message)
    live._on_message = counting  # type: ignore[method-assign]
    await live.start()
    await notifier.connect()
    try:
        await connected(live)
        seen: list[PortfolioUpdated] = []

        async def page(received: PortfolioUpdated) -> None:
            seen.append(received)
        close_page = await live.watch_owner(OPEN, page)
        await notifier.publish([update(CLOSED, 1), update(OPEN, 1), update(CLOSED, 2)])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time for anything else that was routed here to arrive
        assert [(u.owner_id, u.version) for u in seen] == [(OPEN, 1)]
        assert delivered == [f"portfolio.updated.{OPEN}"]

        close_page()  # the last page of that owner closes: the owner is unbound
        for _ in range(100):
            if OPEN not in live._bound:
                break
            await asyncio.sleep(0.05)
        await notifier.publish([update(OPEN, 2)])
        await asyncio.sleep(0.5)
        assert [(u.owner_id, u.version) for u in seen] == [(OPEN, 1)]
        assert delivered == [f"portfolio.updated.{OPEN}"]
    finally:
        await notifier.close()
        await live.stop()
