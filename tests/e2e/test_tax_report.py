"""The tax report through the public API: JSON and Form 8949 CSV, the default method, and its refusals."""

import csv
import io
from decimal import Decimal

import httpx

from tests.e2e.test_user_journey import open_at, priced

D = Decimal


async def test_tax_report_json_and_csv_match_the_realized_pnl_and_refuse_what_they_should(system, alice,
                                                                                          bob) -> None:
    api = alice.client
    pid = (await api.post("/v1/portfolios", json={"name": "Taxed"})).json()["portfolio_id"]  # average cost
    typed_buy = {"side": "buy", "amount_btc": "1", "at": "2023-01-10T12:00:00Z", "fee_usd": "10",
                 "price_usd": "17000"}
    assert (await api.post(f"/v1/portfolios/{pid}/transactions", json=typed_buy)).status_code == 202
    market_buy = await api.post(f"/v1/portfolios/{pid}/transactions",
                                json={"side": "buy", "amount_btc": "1", "at": "2024-01-10T15:20:00Z", "fee_usd": "5"})
    await priced(api, pid, market_buy.json()["transaction_id"])
    sell = await api.post(f"/v1/portfolios/{pid}/transactions",
                          json={"side": "sell", "amount_btc": "1.5", "at": "2024-05-20T21:45:00Z", "fee_usd": "15"})
    sell_id = (await priced(api, pid, sell.json()["transaction_id"]))["transaction_id"]

    response = await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["year"], report["method"], report["pending_sells"]) == (2024, "fifo", 0)  # average → fifo
    proceeds = D("1.5") * open_at("2024-05-20T21:45:00Z") - 15
    second_cost = open_at("2024-01-10T15:20:00Z") + 5
    first, second = report["lines"]
    assert first == {"sell_transaction_id": sell_id, "acquired_at": "2023-01-10T12:00:00Z",
                     "sold_at": "2024-05-20T21:45:00Z", "amount_btc": "1", "proceeds_usd": first["proceeds_usd"],
                     "cost_basis_usd": "17010", "gain_usd": first["gain_usd"], "term": "long"}
    assert abs(D(first["proceeds_usd"]) - proceeds * 2 / 3) < D("1E-18")
    assert (second["amount_btc"], second["term"], second["acquired_at"]) == ("0.5", "short", "2024-01-10T15:20:00Z")
    assert D(second["cost_basis_usd"]) == second_cost / 2
    totals = {key: D(value) for key, value in report["totals"].items()}
    assert totals["proceeds_usd"] == proceeds
    assert totals["cost_basis_usd"] == D("17010") + second_cost / 2
    assert totals["gain_usd"] == totals["short_term_gain_usd"] + totals["long_term_gain_usd"]
    assert totals["long_term_gain_usd"] == D(first["gain_usd"])
    assert (await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2023})).json()["lines"] == []

    # summed over the years, the gains are the realized P&L under the same method
    assert (await api.patch(f"/v1/portfolios/{pid}", json={"cost_basis_method": "fifo"})).status_code == 200
    realized = D((await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]["realized_pnl_usd"])
    assert abs(totals["gain_usd"] - realized) < D("1E-15")
    lifo = (await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024, "method": "lifo"})).json()
    assert [(line["amount_btc"], line["term"]) for line in lifo["lines"]] == [("1", "short"), ("0.5", "long")]

    exported = await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024, "format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="bitfolio-' in exported.headers["content-disposition"]
    assert "-tax-2024-fifo.csv" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["Description", "Date acquired", "Date sold", "Proceeds", "Cost basis", "Gain or loss", "Term"]
    assert rows[1][:3] == ["1.00000000 BTC", "01/10/2023", "05/20/2024"] and rows[1][4:] == [
        "17010.00", f"{D(rows[1][3]) - D('17010'):f}", "Long-term"]
    assert rows[2][0] == "0.50000000 BTC" and rows[2][6] == "Short-term" and len(rows) == 3

    average = await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024, "method": "average"})
    assert average.status_code == 422
    assert average.json()["error"]["code"] == "validation" and "no lots" in average.json()["error"]["message"]
    for params in ({"year": 1969}, {"year": 10000}, {"year": "twenty"}, {}, {"year": 2024, "method": "best"},
                   {"year": 2024, "format": "xlsx"}):
        refused = await api.get(f"/v1/portfolios/{pid}/tax-report", params=params)
        assert refused.status_code == 422, params
        assert refused.json()["error"]["code"] == "validation"
    stranger = await bob.client.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"
    stranger_csv = await bob.client.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024, "format": "csv"})
    assert stranger_csv.status_code == 404


async def test_the_demos_2024_report_splits_a_sell_over_long_and_short_term_lots(system) -> None:
    from gateway.cli import seed_demo_account
    from gateway.settings import Settings

    from tests.e2e.conftest import wait_for

    await seed_demo_account(Settings(env="test", database_url=system.database_urls["gateway"],
                                     rabbit_url=system.rabbit_url))
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=20) as api:
        tokens = (await api.post("/v1/auth/demo")).json()
        api.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        pid = (await api.get("/v1/portfolios")).json()[0]["portfolio_id"]

        async def all_priced():
            return (await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]["pending_count"] == 0
        await wait_for(all_priced)
        report = (await api.get(f"/v1/portfolios/{pid}/tax-report", params={"year": 2024})).json()
    first_sell = [line for line in report["lines"] if line["sell_transaction_id"] ==
                  report["lines"][0]["sell_transaction_id"]]
    assert [(line["amount_btc"], line["term"]) for line in first_sell] == [
        ("0.05", "long"), ("0.04", "short"), ("0.03", "short")]
    assert D(report["totals"]["long_term_gain_usd"]) > 0 and D(report["totals"]["short_term_gain_usd"]) > 0
