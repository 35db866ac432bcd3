"""The full user journey through the public HTTP API, with every service real and the 2024 candles."""

import csv
import io
from datetime import datetime
from decimal import Decimal

import httpx

from tests.e2e.conftest import wait_for
from tests.support.infrastructure import open_candles

D = Decimal


def candle_opens() -> dict[int, Decimal]:
    with open_candles() as handle:
        return {int(r["unix"]): D(r["open"]) for r in csv.DictReader(handle)}


def open_at(iso: str) -> Decimal:
    t = int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
    return candle_opens()[t - t % 3600]


async def priced(client: httpx.AsyncClient, portfolio_id: str, transaction_id: str) -> dict:
    async def check():
        tx = (await client.get(f"/v1/portfolios/{portfolio_id}/transactions/{transaction_id}")).json()
        return tx if tx["status"] != "pending" else None
    return await wait_for(check)


async def test_register_trade_check_metrics_edit_import_export_refresh_logout(system, alice) -> None:
    api = alice.client
    me = (await api.get("/v1/me")).json()
    assert me["email"] == alice.email and me["id"] == alice.user_id
    assert (await api.get("/v1/portfolios")).json() == []

    created = await api.post("/v1/portfolios", json={"name": "Main stack", "goal_usd": "50000"})
    assert created.status_code == 201
    pid = created.json()["portfolio_id"]

    trades = [("buy", "0.5", "2024-01-10T15:20:00Z", "12.5"), ("buy", "0.2", "2024-03-05T08:00:00Z", "4"),
              ("sell", "0.3", "2024-05-20T21:45:00Z", "6")]
    ids = []
    for side, amount, at, fee in trades:
        response = await api.post(f"/v1/portfolios/{pid}/transactions",
                                  json={"side": side, "amount_btc": amount, "at": at, "fee_usd": fee})
        assert response.status_code == 202, response.text
        recorded = response.json()
        # priced as it is recorded when the portfolio service's replica of hourly opens knows the hour already
        assert recorded["status"] == "pending" or D(recorded["price_usd"]) == open_at(at), recorded
        ids.append(recorded["transaction_id"])
        tx = await priced(api, pid, ids[-1])
        assert tx["status"] == "priced" and D(tx["price_usd"]) == open_at(at)

    p1, p2, p3 = (open_at(t[2]) for t in trades)
    view = (await api.get(f"/v1/portfolios/{pid}")).json()
    m = view["metrics"]
    latest = D(m["latest_price_usd"])
    invested = D("0.5") * p1 + D("12.5") + D("0.2") * p2 + 4
    average = invested / D("0.7")
    realized = D("0.3") * p3 - 6 - D("0.3") * average
    holdings = D("0.4")
    assert D(m["invested_usd"]) == invested
    assert D(m["holdings_btc"]) == holdings
    assert abs(D(m["realized_pnl_usd"]) - realized) < D("1E-15")
    assert abs(D(m["cost_basis_usd"]) - holdings * average) < D("1E-15")
    assert D(m["current_value_usd"]) == holdings * latest
    net = D("0.3") * p3 - 6 + holdings * latest - invested
    assert abs(D(m["net_result_usd"]) - net) < D("1E-15")
    assert abs(D(m["roi_pct"]) - net / invested * 100) < D("1E-9")
    assert abs(D(m["goal_progress_pct"]) - holdings * latest / 500) < D("1E-9")

    listed = await api.get(f"/v1/portfolios/{pid}/transactions", params={"limit": 2})
    assert listed.headers["X-Total-Count"] == "3" and [t["transaction_id"] for t in listed.json()] == ids[:0:-1]
    buy = listed.json()[1]
    assert D(buy["metrics"]["cost_usd"]) == D("0.2") * p2 + 4

    moved = await api.patch(f"/v1/portfolios/{pid}/transactions/{ids[1]}", json={"at": "2024-04-01T00:10:00Z"})
    assert moved.status_code == 200 and moved.json()["status"] == "pending"
    assert D((await priced(api, pid, ids[1]))["price_usd"]) == open_at("2024-04-01T00:10:00Z")
    too_much = await api.post(f"/v1/portfolios/{pid}/transactions",
                              json={"side": "sell", "amount_btc": "5", "at": "2024-06-01T00:00:00Z"})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "insufficient_holdings"
    assert "you can't sell 5 BTC" in too_much.json()["error"]["message"]
    assert (await api.delete(f"/v1/portfolios/{pid}/transactions/{ids[2]}")).status_code == 204

    history = await api.get(f"/v1/portfolios/{pid}/history",
                            params={"start": "2024-01-10T00:00:00Z", "end": "2024-01-20T00:00:00Z"})
    assert history.status_code == 200 and len(history.json()["points"]) == 11

    exported = await api.get(f"/v1/portfolios/{pid}/transactions/export", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    copy = (await api.post("/v1/portfolios", json={"name": "Copy"})).json()["portfolio_id"]
    files = {"file": ("export.csv", exported.content, "text/csv")}
    dry = await api.post(f"/v1/portfolios/{copy}/transactions/import", params={"dry_run": "true"}, files=files)
    assert dry.status_code == 200 and dry.json()["imported"] == 0 and dry.json()["valid_rows"] == 2
    done = await api.post(f"/v1/portfolios/{copy}/transactions/import", files=files)
    assert done.json()["imported"] == 2
    bad = io.BytesIO(b"side,amount_btc,at\nbuy,abc,2024-01-01T00:00:00Z\n")
    rejected = await api.post(f"/v1/portfolios/{copy}/transactions/import", files={"file": ("b.csv", bad, "text/csv")})
    assert rejected.json()["rows"][0]["line"] == 2 and "not a number" in rejected.json()["rows"][0]["error"]
    as_json = await api.get(f"/v1/portfolios/{pid}/transactions/export", params={"format": "json"})
    assert len(as_json.json()) == 2

    patched = await api.patch(f"/v1/portfolios/{pid}", json={"name": "Renamed", "cost_basis_method": "fifo",
                                                            "goal_usd": None})
    assert patched.json()["name"] == "Renamed" and patched.json()["cost_basis_method"] == "fifo"
    assert patched.json()["goal_usd"] is None

    async with httpx.AsyncClient(base_url=system.gateway_url) as anonymous:
        rotated = await anonymous.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
        assert rotated.status_code == 200
        new = rotated.json()
        logout = await anonymous.post("/v1/auth/logout", json={"refresh_token": new["refresh_token"]},
                                      headers={"Authorization": f"Bearer {new['access_token']}"})
        assert logout.status_code == 204
        after = await anonymous.get("/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
        assert after.status_code == 401
        again = await anonymous.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert again.status_code == 401
    assert (await api.delete(f"/v1/portfolios/{copy}")).status_code == 204
    assert (await api.get(f"/v1/portfolios/{copy}")).status_code == 404


async def test_prices_routes(system) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        at = await api.get("/v1/prices/at/1704069000")
        assert at.json()["price_usd"] == "42288.58"
        before = await api.get("/v1/prices/at/1000")
        assert before.status_code == 404 and "before the first stored" in before.json()["error"]["message"]
        assert (await api.get("/v1/prices/at/soon")).status_code == 422
        assert (await api.get("/v1/prices/latest")).json()["hour"] == 1726074000
        rows = await api.get("/v1/prices", params={"start": 1704067200, "end": 1704067200 + 7200})
        assert [c["hour"] for c in rows.json()] == [1704067200, 1704070800, 1704074400]
