"""Security through HTTP: JWT attacks, refresh reuse, brute force, IDOR on every route, the error envelope."""

import base64
import json
import time
from uuid import uuid4

import httpx
import jwt
import pytest

from tests.e2e.conftest import PASSWORD, sign_up, wait_for

pytestmark = pytest.mark.e2e


def forged(claims: dict, key: str = "not-the-key-" * 4, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(user_id: str, **overrides) -> dict:
    now = int(time.time())
    return {"sub": user_id, "iat": now, "exp": now + 600, "iss": "bitfolio-gateway", "aud": "bitfolio-api",
            "jti": uuid4().hex, **overrides}


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def status_with(system, token: str) -> int:
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        response = await api.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (200, 401)
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "unauthorized"
        return response.status_code


async def test_jwt_attacks_are_refused(system, alice) -> None:
    header, payload, signature = alice.access_token.split(".")
    none_alg = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered = f"{header}.{b64({**claims, 'sub': 'someone-else'})}.{signature}"
    attacks = {
        "alg none": none_alg,
        "wrong key": forged(valid_claims(alice.user_id)),
        "tampered payload": tampered,
        "expired": forged(valid_claims(alice.user_id, exp=int(time.time()) - 10)),
        "no jti": forged({k: v for k, v in valid_claims(alice.user_id).items() if k != "jti"}),
        "garbage": "not.a.token",
    }
    for name, token in attacks.items():
        assert await status_with(system, token) == 401, name
    assert await status_with(system, alice.access_token) == 200


async def test_wrong_audience_issuer_or_expiry_with_the_real_key_are_refused(system, alice) -> None:
    from gateway.settings import DEV_SECRET

    assert await status_with(system, forged(valid_claims(alice.user_id), DEV_SECRET)) == 200  # the control
    for override in ({"aud": "another-api"}, {"iss": "evil"}, {"exp": int(time.time()) - 1}):
        assert await status_with(system, forged(valid_claims(alice.user_id, **override), DEV_SECRET)) == 401, override
    assert await status_with(system, forged(valid_claims(alice.user_id), DEV_SECRET, "HS512")) == 401


async def test_a_reused_refresh_token_revokes_its_whole_family(system, alice) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        first = (await api.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})).json()
        reuse = await api.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
        assert reuse.status_code == 401 and "already used" in reuse.json()["error"]["message"]
        later = await api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert later.status_code == 401, "the whole family is revoked"


async def test_brute_force_gets_429_with_retry_after(system) -> None:
    account = await sign_up(system.gateway_url)
    await account.client.aclose()
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        codes = [(await api.post("/v1/auth/login", json={"email": account.email, "password": f"wrong-{i}-xxxxx"}))
                 .status_code for i in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        blocked = await api.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        assert blocked.json()["error"]["code"] == "rate_limited"


async def test_registration_rules(system) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        email = f"Mixed.Case-{uuid4().hex[:6]}@Example.COM "
        ok = await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert ok.status_code == 201 and ok.json()["email"] == email.strip().lower()
        again = await api.post("/v1/auth/register", json={"email": email.upper(), "password": PASSWORD})
        assert again.status_code == 409
        short = await api.post("/v1/auth/register", json={"email": "x@example.com", "password": "short"})
        assert short.status_code == 422 and short.json()["error"]["details"][0]["field"] == "password"
        common = await api.post("/v1/auth/register", json={"email": "y@example.com", "password": "password123"})
        assert common.status_code == 422 and "common" in common.json()["error"]["message"]


async def test_every_route_on_another_users_ids_is_404(system, alice, bob) -> None:
    pid = (await alice.client.post("/v1/portfolios", json={"name": "Alice's"})).json()["portfolio_id"]
    tx = (await alice.client.post(f"/v1/portfolios/{pid}/transactions",
                                  json={"side": "buy", "amount_btc": "1", "at": "2024-02-01T00:00:00Z",
                                        "price_usd": "40000"})).json()["transaction_id"]
    csv_file = {"file": ("t.csv", b"side,amount_btc,at\nbuy,1,2024-01-01T00:00:00Z\n", "text/csv")}
    attempts = [
        ("GET", f"/v1/portfolios/{pid}", {}), ("PATCH", f"/v1/portfolios/{pid}", {"json": {"name": "mine"}}),
        ("DELETE", f"/v1/portfolios/{pid}", {}), ("GET", f"/v1/portfolios/{pid}/history", {}),
        ("GET", f"/v1/portfolios/{pid}/transactions", {}),
        ("POST", f"/v1/portfolios/{pid}/transactions",
         {"json": {"side": "buy", "amount_btc": "1", "at": "2024-02-01T00:00:00Z"}}),
        ("GET", f"/v1/portfolios/{pid}/transactions/{tx}", {}),
        ("PATCH", f"/v1/portfolios/{pid}/transactions/{tx}", {"json": {"fee_usd": "1"}}),
        ("DELETE", f"/v1/portfolios/{pid}/transactions/{tx}", {}),
        ("GET", f"/v1/portfolios/{pid}/transactions/export", {}),
        ("POST", f"/v1/portfolios/{pid}/transactions/import", {"files": csv_file}),
    ]
    for method, path, extra in attempts:
        response = await bob.client.request(method, path, **extra)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert (await bob.client.get("/v1/portfolios")).json() == []
    still = await alice.client.get(f"/v1/portfolios/{pid}")
    assert still.status_code == 200 and still.json()["name"] == "Alice's"
    assert still.json()["metrics"]["transaction_count"] == 1


async def test_errors_always_use_the_envelope(system, alice) -> None:
    api = alice.client
    cases = [(await api.get("/nowhere"), 404), (await api.put("/v1/me"), 405),
             (await api.post("/v1/portfolios", json={"name": ""}), 422),
             (await api.post("/v1/portfolios", content=b"{not json", headers={"content-type": "application/json"}),
              422),
             (await api.get("/v1/portfolios", params={"limit": "lots"}), 422),
             (await api.post("/v1/portfolios/x/transactions", json={"side": "buy", "amount_btc": "1",
                                                                   "at": "2024-01-01T00:00:00"}), 422)]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) >= {"code", "message"}
    async with httpx.AsyncClient(base_url=system.gateway_url) as anonymous:
        response = await anonymous.get("/v1/portfolios")
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


async def test_demo_is_read_only(system) -> None:
    from gateway.cli import DEMO_EARLIER_BUYS, DEMO_TRADES, seed_demo_account
    from gateway.settings import Settings

    await seed_demo_account(Settings(env="test", database_url=system.database_urls["gateway"],
                                      rabbit_url=system.rabbit_url))
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=20) as api:
        tokens = (await api.post("/v1/auth/demo")).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        portfolios = (await api.get("/v1/portfolios", headers=headers)).json()
        # the stack (its trades and a transfer out) and the cold storage the transfer went to
        assert [p["metrics"]["transaction_count"] for p in portfolios] == [
            len(DEMO_EARLIER_BUYS) + len(DEMO_TRADES) + 1, 1]
        vault = portfolios[1]["portfolio_id"]

        async def arrived():
            items = (await api.get(f"/v1/portfolios/{vault}/transactions", headers=headers)).json()
            return items if items[0]["status"] == "priced" else None
        received = (await wait_for(arrived))[0]
        assert received["kind"] == "transfer_in" and received["amount_btc"] == "0.1999"
        move = await api.post(f"/v1/portfolios/{vault}/transfers", headers=headers,
                              json={"to_portfolio_id": portfolios[0]["portfolio_id"], "amount_btc": "0.1",
                                    "at": "2024-10-01T00:00:00Z"})
        assert move.status_code == 403
        write = await api.post("/v1/portfolios", json={"name": "x"}, headers=headers)
        assert write.status_code == 403 and "read-only" in write.json()["error"]["message"]
