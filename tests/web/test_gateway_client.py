"""The dashboard's gateway client against a fake gateway: single-flight token refresh and Idempotency-Key on writes."""

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest
from bitfolio_web.gateway_client import GatewayClient, GatewayError, UserAction
from bitfolio_web.trade_form import TradeForm, changed_fields


@dataclass
class FakeGateway:
    """Rotating refresh tokens with reuse detection, as the real gateway has: a second use ends the session."""

    valid_access: set[str] = field(default_factory=lambda: {"access-1"})
    live_refresh: set[str] = field(default_factory=lambda: {"refresh-1"})
    used_refresh: set[str] = field(default_factory=set)
    refreshes: int = 0
    logged_out: bool = False
    writes: list[httpx.Request] = field(default_factory=list)
    drop_first_write: bool = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/refresh":
            token = json.loads(request.content)["refresh_token"]
            await asyncio.sleep(0.05)  # the round trip during which a second expired request arrives
            if token in self.used_refresh or token not in self.live_refresh:
                self.logged_out = True
                self.valid_access.clear()
                return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "Reused token."}})
            self.refreshes += 1
            self.live_refresh.discard(token)
            self.used_refresh.add(token)
            access, refresh = f"access-{self.refreshes + 1}", f"refresh-{self.refreshes + 1}"
            self.valid_access.add(access)
            self.live_refresh.add(refresh)
            return httpx.Response(200, json={"access_token": access, "refresh_token": refresh})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_access:
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "Expired."}})
        if request.method != "GET":
            self.writes.append(request)
            if self.drop_first_write and len(self.writes) == 1:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"ok": True})

    def expire_access_tokens(self) -> None:
        self.valid_access.clear()


@pytest.fixture
async def gateway() -> FakeGateway:
    return FakeGateway()


def client_for(fake: FakeGateway, storage: dict, lock: asyncio.Lock) -> GatewayClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    return GatewayClient("http://gateway.test", storage, http, lock)


async def test_two_requests_meeting_an_expired_token_refresh_once_and_stay_logged_in(gateway: FakeGateway) -> None:
    storage = {"access_token": "access-1", "refresh_token": "refresh-1"}
    session_lock = asyncio.Lock()
    gateway.expire_access_tokens()
    # Two pages of one session, each with its own client, as the dashboard builds them.
    first, second = client_for(gateway, storage, session_lock), client_for(gateway, storage, session_lock)
    answers = await asyncio.gather(first.json("GET", "/v1/portfolios"), second.json("GET", "/v1/me"))
    assert answers == [{"ok": True}, {"ok": True}]
    assert gateway.refreshes == 1
    assert not gateway.logged_out
    assert storage["access_token"] == "access-2" and storage["refresh_token"] == "refresh-2"


async def test_a_refused_refresh_ends_the_session(gateway: FakeGateway) -> None:
    storage = {"access_token": "access-1", "refresh_token": "stolen-and-used"}
    gateway.expire_access_tokens()
    with pytest.raises(GatewayError) as refused:
        await client_for(gateway, storage, asyncio.Lock()).json("GET", "/v1/me")
    assert refused.value.status == 401
    assert "access_token" not in storage and "refresh_token" not in storage


async def test_every_write_carries_an_idempotency_key_reused_when_it_is_sent_again(gateway: FakeGateway) -> None:
    storage = {"access_token": "access-1", "refresh_token": "refresh-1"}
    client = client_for(gateway, storage, asyncio.Lock())
    await client.record("p1", {"side": "buy", "amount_btc": "1"})
    await client.delete_transaction("p1", "t1")
    gateway.expire_access_tokens()
    await client.edit("p1", "t1", {"note": "x"})  # 401, refresh, the same PATCH again
    keys = [request.headers.get("Idempotency-Key") for request in gateway.writes]
    assert all(keys) and len(keys) == 3
    assert len(set(keys)) == 3  # one action each


async def test_a_write_cut_off_by_a_dropped_connection_is_sent_again_with_the_same_key(gateway: FakeGateway) -> None:
    gateway.drop_first_write = True
    client = client_for(gateway, {"access_token": "access-1", "refresh_token": "refresh-1"}, asyncio.Lock())
    assert await client.record("p1", {"side": "buy", "amount_btc": "1"}) == {"ok": True}
    first, again = (request.headers["Idempotency-Key"] for request in gateway.writes)
    assert first == again


async def test_a_retried_user_action_reuses_its_key_until_the_request_changes(gateway: FakeGateway) -> None:
    client = client_for(gateway, {"access_token": "access-1", "refresh_token": "refresh-1"}, asyncio.Lock())
    save = UserAction()
    await client.record("p1", {"side": "buy", "amount_btc": "1"}, save)
    await client.record("p1", {"side": "buy", "amount_btc": "1"}, save)  # the user clicked Save again
    await client.record("p1", {"side": "buy", "amount_btc": "2"}, save)  # corrected the amount first
    first, retry, corrected = (request.headers["Idempotency-Key"] for request in gateway.writes)
    assert first == retry != corrected


STORED = {"at_iso": "2024-03-01T10:15:42.123456+00:00", "amount_raw": "0.50000000", "fee_raw": "2.50",
          "price_raw": None, "note": ""}


def test_editing_only_the_note_sends_only_the_note() -> None:
    stored = TradeForm.of_transaction(STORED, "Europe/Berlin")
    assert stored.when == "2024-03-01T11:15"  # shown to the minute, so sending it would move the trade
    entered = TradeForm(amount="0.5", when=stored.when, fee="2.5", price="", note="from the ATM")
    assert changed_fields(stored, entered, "Europe/Berlin") == {"note": "from the ATM"}


def test_a_changed_time_amount_or_cleared_price_is_sent() -> None:
    stored = TradeForm.of_transaction({**STORED, "price_raw": "61000"}, "UTC")
    entered = TradeForm(amount="0.6", when="2024-03-02T09:00", fee="2.50", price="", note="")
    assert changed_fields(stored, entered, "UTC") == {"amount_btc": "0.6", "at": "2024-03-02T09:00:00+00:00",
                                                      "price_usd": None}
    assert changed_fields(stored, TradeForm(**{**stored.__dict__, "price": "62000"}), "UTC") == {"price_usd": "62000"}
    assert changed_fields(stored, stored, "UTC") == {}


async def test_every_request_names_the_visitors_address_for_the_gateways_per_visitor_limits() -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "user": {}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    visitor = GatewayClient("http://gateway.test", {}, http, asyncio.Lock(), browser_address="203.0.113.7")
    await visitor.login("me@example.com", "a long passphrase")
    await visitor.json("GET", "/v1/portfolios")
    assert len(seen) == 3 and all(request.headers.get("X-Forwarded-For") == "203.0.113.7" for request in seen)
    anonymous = GatewayClient("http://gateway.test", {}, http, asyncio.Lock())
    await anonymous.json("GET", "/v1/portfolios")
    assert "X-Forwarded-For" not in seen[-1].headers


async def test_the_list_after_an_update_shows_that_portfolio_at_least_at_the_version_heard_of() -> None:
    """The gateway's copy of the list may not have applied the portfolio.updated the page just heard of: that one
    portfolio is asked for at that version, the others are shown as listed."""
    asked: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url.copy_with(scheme="http", host="gateway.test")))
        if request.url.path == "/v1/portfolios":
            return httpx.Response(200, json=[{"portfolio_id": "p1", "version": 4, "name": "old"},
                                             {"portfolio_id": "p2", "version": 9, "name": "other"}])
        assert request.url.path == "/v1/portfolios/p1" and request.url.params["min_version"] == "5"
        return httpx.Response(200, json={"portfolio_id": "p1", "version": 5, "name": "new"})

    client = GatewayClient("http://gateway.test", {"access_token": "a", "refresh_token": "r"},
                           httpx.AsyncClient(transport=httpx.MockTransport(handle)), asyncio.Lock())
    items = await client.portfolios_after("p1", 5)
    assert [(item["portfolio_id"], item["version"], item["name"]) for item in items] == [
        ("p1", 5, "new"), ("p2", 9, "other")]
    assert len(asked) == 2
    asked.clear()
    assert [item["version"] for item in await client.portfolios_after("p2", 9)] == [4, 9]  # already current
    assert [item["version"] for item in await client.portfolios_after(None, None)] == [4, 9]  # a price tick
    assert len(asked) == 2  # the list alone, each time
