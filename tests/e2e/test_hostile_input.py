"""Hostile input at every route: a 4xx with the error envelope, never a 5xx, and nothing stored."""

import httpx
import pytest
from contracts.portfolios import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS

pytestmark = pytest.mark.e2e

HOSTILE_MONEY = ["1e-16384", "1e-999999", "1_000", "١٢", "²", "NaN", "Infinity", " 1", "1e99999", 1, 0.5]
OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z",
                      "99999999999999999999", 99999999999999999999, -1]
TRADE = {"side": "buy", "amount_btc": "0.5", "at": "2024-02-01T00:00:00Z", "price_usd": "40000"}


def refused(response: httpx.Response, status: int = 422, says: str | None = None) -> dict:
    assert response.status_code == status, (response.request.url, response.text[:400])
    error = response.json()["error"]
    assert {"code", "message"} <= set(error)
    if says is not None:
        assert says in response.text, response.text[:400]
    return error


async def new_portfolio(api: httpx.AsyncClient) -> str:
    created = await api.post("/v1/portfolios", json={"name": "Hostile"})
    assert created.status_code == 201, created.text
    return created.json()["portfolio_id"]


async def transaction_count(api: httpx.AsyncClient, pid: str) -> int:
    return (await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]["transaction_count"]


async def test_hostile_money_is_refused_on_every_money_field_and_nothing_is_stored(system, alice) -> None:
    api = alice.client
    pid = await new_portfolio(api)
    for value in HOSTILE_MONEY:
        for field in ("amount_btc", "fee_usd", "price_usd"):
            refused(await api.post(f"/v1/portfolios/{pid}/transactions", json={**TRADE, field: value}))
        refused(await api.post("/v1/portfolios", json={"name": "Goal", "goal_usd": value}))
        refused(await api.patch(f"/v1/portfolios/{pid}", json={"goal_usd": value}))
    for field, value, sentence in [("amount_btc", "0", "more than 0"), ("amount_btc", "21000001", "21,000,000"),
                                   ("amount_btc", "1e-9", "8 decimals"), ("fee_usd", "-1", "negative"),
                                   ("fee_usd", "2e15", "10^15"), ("price_usd", "-0", "positive")]:
        refused(await api.post(f"/v1/portfolios/{pid}/transactions", json={**TRADE, field: value}), says=sentence)
    for note in ["nul\u0000byte", "x" * 501, "bell\u0007"]:
        refused(await api.post(f"/v1/portfolios/{pid}/transactions", json={**TRADE, "note": note}))
    surrogate = b'{"side":"buy","amount_btc":"1","at":"2024-02-01T00:00:00Z","note":"\\ud800"}'
    refused(await api.post(f"/v1/portfolios/{pid}/transactions", content=surrogate,
                           headers={"content-type": "application/json"}))
    assert await transaction_count(api, pid) == 0
    assert [p["name"] for p in (await api.get("/v1/portfolios")).json()] == ["Hostile"]

    recorded = await api.post(f"/v1/portfolios/{pid}/transactions", json={**TRADE, "fee_usd": "-0"})
    assert recorded.status_code == 202 and recorded.json()["fee_usd"] == "0", recorded.text
    tx = recorded.json()["transaction_id"]
    for value in HOSTILE_MONEY:
        refused(await api.patch(f"/v1/portfolios/{pid}/transactions/{tx}", json={"amount_btc": value}))
    for at in OUT_OF_RANGE_TIMES:
        refused(await api.patch(f"/v1/portfolios/{pid}/transactions/{tx}", json={"at": at}), says="out of range")
    kept = (await api.get(f"/v1/portfolios/{pid}/transactions/{tx}")).json()
    assert (kept["amount_btc"], kept["at"]) == ("0.5", "2024-02-01T00:00:00Z")


async def test_times_out_of_range_are_a_422_that_says_so_at_every_route(system, alice) -> None:
    api = alice.client
    pid = await new_portfolio(api)
    for at in OUT_OF_RANGE_TIMES:
        refused(await api.post(f"/v1/portfolios/{pid}/transactions", json={**TRADE, "at": at}), says="out of range")
        if isinstance(at, str):
            for bound in ("start", "end"):
                refused(await api.get(f"/v1/portfolios/{pid}/history", params={bound: at}), says="out of range")
    for unix in ["99999999999999999999", "-1", "253402300800"]:
        refused(await api.get(f"/v1/prices/at/{unix}"), says="out of range")
        refused(await api.get("/v1/prices", params={"start": "0", "end": unix}), says="out of range")
        refused(await api.get("/v1/prices", params={"start": unix, "end": "0"}), says="out of range")
    for unix in ["1_000", "²", "1e3", "١٢"]:
        refused(await api.get(f"/v1/prices/at/{unix}"), says="ASCII digits")
    assert await transaction_count(api, pid) == 0
    # the edges of the range are answered, not overflowed
    for params in ({"start": "1970-01-01T00:00:00Z", "end": "1970-01-02T00:00:00Z"},
                   {"start": "9999-12-30T00:00:00Z", "end": "9999-12-31T23:59:59Z", "interval": "hour"},
                   {"end": "1970-01-01T00:00:00Z"}):
        response = await api.get(f"/v1/portfolios/{pid}/history", params=params)
        assert response.status_code in (200, 422), (params, response.text[:300])
    assert (await api.get(f"/v1/prices/at/{253402300799}")).status_code in (404, 422)


def csv_file(text: str | bytes) -> dict:
    return {"file": ("t.csv", text.encode() if isinstance(text, str) else text, "text/csv")}


async def test_hostile_csv_rows_are_row_errors_with_line_numbers_and_nothing_is_saved(system, alice) -> None:
    api = alice.client
    pid = await new_portfolio(api)
    bad = ("side,amount_btc,at,fee_usd,price_usd,note\n"
           "buy,0.1,2024-01-05T00:00:00Z,1,40000,fine\n"
           "buy,0.1,99999999999999999999,,40000,\n"
           "buy,0.1,²,,40000,\n"
           "buy,0.1,0001-01-01T00:00:00+01:00,,40000,\n"
           "buy,1e-16384,2024-01-05T00:00:00Z,,40000,\n"
           "buy,0.1,2024-01-05T00:00:00Z,,40000,\"" + "x" * 200_000 + "\"\n"
           "buy,0.1,2024-01-05T00:00:00Z,,40000,\"nul\x00\"\n"
           "buy,0.1,2024-01-05T00:00:00Z,,40000," + "n" * 501 + "\n"
           "buy,1_000,2024-01-05T00:00:00Z,,40000,\n")
    for params in ({"dry_run": "true"}, {}, {"skip_invalid": "false"}):
        response = await api.post(f"/v1/portfolios/{pid}/transactions/import", params=params, files=csv_file(bad))
        assert response.status_code == 200, response.text[:400]
        report = response.json()
        assert report["imported"] == 0 and report["valid_rows"] == 1
        errors = {row["line"]: row["error"] for row in report["rows"] if not row["ok"]}
        assert sorted(errors) == list(range(3, 11)), errors
        assert "out of range" in errors[3] and "ISO 8601" in errors[4] and "out of range" in errors[5]
        assert "plain decimal form" in errors[6] and "1,000 characters" in errors[7]
        assert "control characters" in errors[8] and "500 characters" in errors[9]
    assert await transaction_count(api, pid) == 0

    eur = ("ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,"
           "Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
           "a1,2024-03-01 10:00:00 UTC,Buy,BTC,0.01,EUR,€57000.00,€570.00,€575.00,€5.00,\n")
    report = (await api.post(f"/v1/portfolios/{pid}/transactions/import", files=csv_file(eur))).json()
    assert report["format"] == "coinbase" and report["imported"] == 0
    assert report["rows"][0]["line"] == 2 and "priced in EUR" in report["rows"][0]["error"]
    assert await transaction_count(api, pid) == 0


async def test_import_limits_are_answered_with_413_and_422(system, alice) -> None:
    api = alice.client
    pid = await new_portfolio(api)
    too_big = b"side,amount_btc,at\n" + b"x" * MAX_IMPORT_BYTES
    refused(await api.post(f"/v1/portfolios/{pid}/transactions/import", files=csv_file(too_big)), 413)
    too_many = "side,amount_btc,at\n" + "buy,0.1,2024-01-05T00:00:00Z\n" * (MAX_IMPORT_ROWS + 1)
    refused(await api.post(f"/v1/portfolios/{pid}/transactions/import", params={"dry_run": "true"},
                           files=csv_file(too_many)), 422, says="rows")
    refused(await api.post(f"/v1/portfolios/{pid}/transactions/import", files=csv_file(b"\xff\xfe\x00")), 422)
    assert await transaction_count(api, pid) == 0
    description = (await api.get("/openapi.json")).json()["paths"]["/v1/portfolios/{portfolio_id}/transactions/import"]
    assert "50,000 rows" in description["post"]["description"]
