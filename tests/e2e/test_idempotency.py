"""Idempotency-Key over the real services: a retried write is applied once and answered as the first time."""

import asyncio
from uuid import uuid4

import aio_pika
import httpx
import pytest

from contracts import names
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e
TRADE = {"side": "buy", "amount_btc": "0.5", "at": "2024-02-01T10:00:00Z", "price_usd": "42000", "fee_usd": "1"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid4().hex}


async def new_portfolio(api: httpx.AsyncClient) -> str:
    created = await api.post("/v1/portfolios", json={"name": "idempotent"}, headers=key())
    assert created.status_code == 201, created.text
    return str(created.json()["portfolio_id"])


async def trade_count(api: httpx.AsyncClient, portfolio_id: str) -> int:
    return int((await api.get(f"/v1/portfolios/{portfolio_id}/transactions")).headers["X-Total-Count"])


async def dead_letter_count(rabbit_url: str) -> int:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(
            names.dead_letter_queue(names.PORTFOLIO_COMMANDS_QUEUE), passive=True)
        return int(queue.declaration_result.message_count or 0)


async def test_a_repeated_write_is_applied_once_and_answered_exactly_as_the_first_time(system, alice) -> None:
    portfolio_id = await new_portfolio(alice.client)
    same = key()
    first = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=same)
    again = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=same)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await trade_count(alice.client, portfolio_id) == 1
    other = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=key())
    assert other.status_code == 202 and await trade_count(alice.client, portfolio_id) == 2, "a new key is a new trade"


async def test_a_key_reused_with_another_body_is_a_conflict(system, alice) -> None:
    portfolio_id = await new_portfolio(alice.client)
    same = key()
    assert (await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE,
                                    headers=same)).status_code == 202
    changed = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions",
                                      json={**TRADE, "amount_btc": "5"}, headers=same)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "conflict"
    assert await trade_count(alice.client, portfolio_id) == 1


async def test_keys_belong_to_their_user_and_are_at_most_255_characters(system, alice, bob) -> None:
    shared = key()
    assert (await alice.client.post("/v1/portfolios", json={"name": "a"}, headers=shared)).status_code == 201
    bobs = await bob.client.post("/v1/portfolios", json={"name": "a"}, headers=shared)
    assert bobs.status_code == 201 and "Idempotent-Replayed" not in bobs.headers
    assert len((await bob.client.get("/v1/portfolios")).json()) == 1
    too_long = await alice.client.post("/v1/portfolios", json={"name": "a"}, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "validation"
    assert (await alice.client.post("/v1/portfolios", json={"name": "a"},
                                    headers={"Idempotency-Key": "k" * 255})).status_code == 201


async def test_concurrent_duplicates_never_both_run(system, alice) -> None:
    portfolio_id = await new_portfolio(alice.client)
    same = key()
    answers = await asyncio.gather(*(alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE,
                                                       headers=same) for _ in range(6)))
    assert {a.status_code for a in answers} <= {202, 409}
    applied = [a for a in answers if a.status_code == 202]
    assert applied and all(a.content == applied[0].content for a in applied)
    assert all(a.json()["error"]["code"] == "conflict" for a in answers if a.status_code == 409)
    assert await trade_count(alice.client, portfolio_id) == 1


async def test_a_retry_after_a_503_returns_the_result_not_a_second_trade(system, alice) -> None:
    portfolio_id = await new_portfolio(alice.client)
    parked_before = await dead_letter_count(system.rabbit_url)
    portfolio_service = system.launcher.services["portfolio"]
    portfolio_service.stop()
    same = key()
    try:
        gave_up = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=same,
                                          timeout=60)
        assert gave_up.status_code == 503, gave_up.text
    finally:
        await asyncio.to_thread(portfolio_service.start)
    # The command the gateway gave up on expired in its queue: dead-lettered (a trace), never applied.
    await wait_for(lambda: _more_than(system.rabbit_url, parked_before))
    assert await trade_count(alice.client, portfolio_id) == 0
    retried = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=same)
    assert retried.status_code == 202, retried.text
    again = await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions", json=TRADE, headers=same)
    assert again.content == retried.content
    await asyncio.sleep(1)  # anything still in flight would land now
    assert await trade_count(alice.client, portfolio_id) == 1


async def _more_than(rabbit_url: str, count: int) -> bool:
    return await dead_letter_count(rabbit_url) > count


async def test_a_retried_upload_is_the_same_request_whatever_multipart_boundary_the_client_picks(system,
                                                                                                alice) -> None:
    portfolio_id = await new_portfolio(alice.client)
    same = key()
    csv_file = b"side,amount_btc,at,fee_usd,price_usd,note\nbuy,0.1,2024-01-05T00:00:00Z,1,44000,\n"
    answers = [await alice.client.post(f"/v1/portfolios/{portfolio_id}/transactions/import", headers=same,
                                       files={"file": ("t.csv", csv_file, "text/csv")}) for _ in range(2)]
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].headers["Idempotent-Replayed"] == "true" and answers[1].content == answers[0].content
    assert await trade_count(alice.client, portfolio_id) == 1
