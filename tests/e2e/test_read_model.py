"""Reads from the gateway's read model, with two gateway copies on the real broker: events keep both current,
revocations reach both, and a copy whose feed dropped serves nothing stale."""

import re
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from tests.e2e.conftest import Account, sign_up, wait_for
from tests.support.system import System

REVOCATION_DELAY_SECONDS = 5.0
"""The documented bound (GATEWAY_REVOCATION_SYNC_SECONDS); through the bus it is a matter of milliseconds."""
TRADE = {"side": "buy", "amount_btc": "0.5", "at": "2024-03-01T12:00:00Z", "price_usd": "60000"}


@pytest.fixture(scope="module")
def copy_b(system: System) -> Iterator[str]:
    """A second gateway process on the same broker and database."""
    service = system.launcher.start("gateway", copy=2)
    yield service.url
    service.stop()
    system.launcher.services.pop("gateway-2", None)


async def metric(base_url: str, name: str, labels: str = "") -> float:
    async with httpx.AsyncClient(base_url=base_url) as api:
        text = (await api.get("/metrics")).text
    found = re.search(rf"^{name}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def request_reply_reads(base_url: str) -> float:
    return await metric(base_url, "gateway_portfolio_reads_total", '{source="request_reply"}')


def as_user(base_url: str, account: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=20,
                             headers={"Authorization": f"Bearer {account.access_token}"})


async def test_reads_after_events_need_no_request_and_see_the_users_own_write(system: System, alice: Account
                                                                              ) -> None:
    api = alice.client
    pid = (await api.post("/v1/portfolios", json={"name": "Read model"})).json()["portfolio_id"]
    await api.get("/v1/portfolios")  # alice's list, read once
    for _ in range(3):
        assert (await api.post(f"/v1/portfolios/{pid}/transactions", json=TRADE)).status_code == 202
        seen = (await api.get(f"/v1/portfolios/{pid}")).json()  # right after the write: at least its version
        assert seen["metrics"]["transaction_count"] >= 1
    await wait_for(lambda: _count_is(api, pid, 3))
    before = await request_reply_reads(system.gateway_url)
    for _ in range(20):
        assert (await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"] == 3
        listed = await api.get("/v1/portfolios")
        assert [p["portfolio_id"] for p in listed.json()] == [pid] and listed.headers["X-Total-Count"] == "1"
    assert await request_reply_reads(system.gateway_url) == before, "every read came from the read model"


async def _count_is(api: httpx.AsyncClient, pid: str, count: int) -> bool:
    return bool((await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"] == count)


async def test_a_write_through_one_copy_is_seen_through_the_other(system: System, copy_b: str, alice: Account
                                                                  ) -> None:
    pid = (await alice.client.post("/v1/portfolios", json={"name": "Two copies"})).json()["portfolio_id"]
    async with as_user(copy_b, alice) as b:
        assert (await b.get(f"/v1/portfolios/{pid}")).status_code == 200  # cold on B: read once
        assert [p["portfolio_id"] for p in (await b.get("/v1/portfolios")).json()] == [pid]
        before = await request_reply_reads(copy_b)
        assert (await alice.client.post(f"/v1/portfolios/{pid}/transactions", json=TRADE)).status_code == 202
        await wait_for(lambda: _count_is(b, pid, 1))
        second = (await alice.client.post("/v1/portfolios", json={"name": "Created via A"})).json()["portfolio_id"]
        await wait_for(lambda: _listed(b, [pid, second]))
        assert (await alice.client.delete(f"/v1/portfolios/{pid}")).status_code == 204
        await wait_for(lambda: _listed(b, [second]))
        assert (await b.get(f"/v1/portfolios/{pid}")).status_code == 404
        assert await request_reply_reads(copy_b) == before, "B learned every change from events"


async def _listed(api: httpx.AsyncClient, ids: list[str]) -> bool:
    return [p["portfolio_id"] for p in (await api.get("/v1/portfolios")).json()] == ids


async def test_a_logout_through_one_copy_is_refused_by_the_other_within_the_delay(system: System, copy_b: str
                                                                                   ) -> None:
    account = await sign_up(system.gateway_url)
    async with as_user(copy_b, account) as b:
        assert (await b.get("/v1/portfolios")).status_code == 200
        assert (await account.client.post("/v1/auth/logout")).status_code == 204
        started = time.monotonic()
        await wait_for(lambda: _refused(b), timeout=REVOCATION_DELAY_SECONDS)
        assert time.monotonic() - started < REVOCATION_DELAY_SECONDS
        assert "logout" in (await b.get("/v1/portfolios")).json()["error"]["message"]
    await account.client.aclose()


async def test_a_reused_refresh_token_ends_the_session_on_every_copy(system: System, copy_b: str) -> None:
    account = await sign_up(system.gateway_url)
    async with as_user(copy_b, account) as b, httpx.AsyncClient(base_url=system.gateway_url) as anonymous:
        assert (await b.get("/v1/portfolios")).status_code == 200
        assert (await anonymous.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})).is_success
        reuse = await anonymous.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        assert reuse.status_code == 401
        await wait_for(lambda: _refused(b), timeout=REVOCATION_DELAY_SECONDS)
        assert "used twice" in (await b.get("/v1/portfolios")).json()["error"]["message"]
        assert (await account.client.get("/v1/portfolios")).status_code == 401  # and on copy A
    await account.client.aclose()


async def _refused(api: httpx.AsyncClient) -> bool:
    return (await api.get("/v1/portfolios")).status_code == 401


def close_feed_connection(system: System, port: int) -> None:
    """Cut one gateway copy's event feed, as a network drop would (the broker deletes its exclusive queue)."""
    vhost = unquote(urlsplit(system.rabbit_url).path.lstrip("/"))
    listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "-p", vhost, "pid", "client_properties"],
                             check=True, capture_output=True, text=True).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if f"gateway :{port} event feed" in line]
    assert len(pids) == 1, listing
    subprocess.run(["rabbitmqctl", "-q", "close_connection", pids[0], "test: the feed drops"], check=True,
                   capture_output=True)


async def test_a_copy_whose_feed_dropped_serves_nothing_stale_and_is_current_again(
        system: System, copy_b: str, alice: Account) -> None:
    pid = (await alice.client.post("/v1/portfolios", json={"name": "Drop"})).json()["portfolio_id"]
    async with as_user(copy_b, alice) as b:
        assert (await b.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"] == 0  # kept on B
        resets = await metric(copy_b, "gateway_read_model_resets_total")
        close_feed_connection(system, int(urlsplit(copy_b).port or 0))
        # The entry B held may miss an event from now on: B forgets it (aio-pika reconnects within milliseconds
        # here, so "cold" itself is too brief to observe; the reset is counted).
        await wait_for(lambda: _metric_is(copy_b, "gateway_read_model_resets_total", resets + 1), timeout=10)
        assert (await alice.client.post(f"/v1/portfolios/{pid}/transactions", json=TRADE)).status_code == 202
        await wait_for(lambda: _count_is(alice.client, pid, 1))
        assert (await b.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"] == 1
        await wait_for(lambda: _metric_is(copy_b, "gateway_read_model_live", 1.0), timeout=30)
        assert (await b.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"] == 1  # kept again
        before = await request_reply_reads(copy_b)
        assert (await alice.client.post(f"/v1/portfolios/{pid}/transactions", json=TRADE)).status_code == 202
        await wait_for(lambda: _count_is(b, pid, 2))
        assert await request_reply_reads(copy_b) == before, "after the reconnect, events keep B current again"


async def _metric_is(base_url: str, name: str, expected: float) -> bool:
    return await metric(base_url, name) == expected
