"""Accounts over HTTP with the real database: sessions end at logout, and login limits lock out only the guesser."""

from uuid import uuid4

import httpx

from tests.integration.gateway.conftest import PASSWORD

PROXY = "10.0.0.5"


def new_email() -> str:
    return f"user-{uuid4().hex[:10]}@example.com"


async def registered(api: httpx.AsyncClient, **headers: str) -> str:
    email = new_email()
    response = await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD}, headers=headers)
    assert response.status_code == 201, response.text
    return email


async def test_logout_without_a_body_ends_the_refresh_token_too(gateway_client) -> None:
    api = gateway_client()
    email = await registered(api)
    tokens = (await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    rotated = (await api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    logout = await api.post("/v1/auth/logout", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert logout.status_code == 204
    after = await api.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401, "the session's refresh family is revoked by the logout"


async def test_logout_ends_only_its_own_session(gateway_client) -> None:
    api = gateway_client()
    email = await registered(api)
    laptop = (await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    phone = (await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    await api.post("/v1/auth/logout", headers={"Authorization": f"Bearer {laptop['access_token']}"})
    still = await api.post("/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert still.status_code == 200


async def test_a_strangers_wrong_passwords_behind_the_dashboard_do_not_lock_the_owner_out(gateway_client) -> None:
    dashboard = gateway_client(peer=PROXY, failed_logins_per_ip=20)
    email = await registered(dashboard, **{"X-Forwarded-For": "198.51.100.7"})
    stranger = {"X-Forwarded-For": "203.0.113.66"}
    codes = [(await dashboard.post("/v1/auth/login", json={"email": email, "password": f"wrong-{i}-guess"},
                                   headers=stranger)).status_code for i in range(25)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    owner = await dashboard.post("/v1/auth/login", json={"email": email, "password": PASSWORD},
                                 headers={"X-Forwarded-For": "198.51.100.7"})
    assert owner.status_code == 200, owner.text
    other_user = await registered(dashboard, **{"X-Forwarded-For": "198.51.100.8"})
    other = await dashboard.post("/v1/auth/login", json={"email": other_user, "password": PASSWORD},
                                 headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 200, "another dashboard user is not locked by the stranger's address either"


async def test_an_untrusted_client_cannot_escape_its_limit_by_forging_x_forwarded_for(gateway_client) -> None:
    direct = gateway_client(peer="192.0.2.10")
    email = await registered(direct)
    codes = [(await direct.post("/v1/auth/login", json={"email": email, "password": f"wrong-{i}-guess"},
                                headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code for i in range(6)]
    assert codes == [401] * 5 + [429]


async def test_register_refresh_and_demo_are_rate_limited_per_address(gateway_client) -> None:
    api = gateway_client(peer=PROXY, registrations_per_ip_per_hour=2, token_requests_per_ip_per_minute=2)
    here = {"X-Forwarded-For": "198.51.100.20"}
    await registered(api, **here)
    await registered(api, **here)
    third = await api.post("/v1/auth/register", json={"email": new_email(), "password": PASSWORD}, headers=here)
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
    assert third.json()["error"]["code"] == "rate_limited"
    await registered(api, **{"X-Forwarded-For": "198.51.100.21"})  # another address has its own budget
    codes = [(await api.post("/v1/auth/refresh", json={"refresh_token": "x" * 20}, headers=here)).status_code,
             (await api.post("/v1/auth/demo", headers=here)).status_code,
             (await api.post("/v1/auth/refresh", json={"refresh_token": "x" * 20}, headers=here)).status_code,
             (await api.post("/v1/auth/demo", headers=here)).status_code]
    assert codes == [401, 404, 429, 429]
