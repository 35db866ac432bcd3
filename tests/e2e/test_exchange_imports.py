"""Each exchange's export imported through the gateway: a dry run that names the format and counts the rows, then
the real import (skipping the bad rows) that records exactly the file's BTC trades at their typed prices."""

from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parents[1] / "fixtures" / "exchanges"

# file → (format, data rows, skipped, errors, the trades as (side, amount_btc, price_usd, fee_usd, at))
EXPECTED = {
    "coinbase.csv": ("coinbase", 6, 2, 1, [
        ("buy", "0.01", "62000", "5.99", "2024-03-01T12:00:00Z"),
        ("sell", "0.002", "66100.5", "0.79", "2024-03-05T17:45:10Z"),
        ("buy", "0.0015", "67000", "0.6", "2024-03-08T11:00:00Z")]),
    "kraken-ledgers-old.csv": ("kraken", 10, 7, 1, [
        ("buy", "0.1", "45000", "11.7", "2024-01-03T10:00:00Z"),
        ("sell", "0.05005", "44000", "2.2", "2024-01-04T11:30:00Z")]),
    "kraken-ledgers-new.csv": ("kraken", 8, 4, 1, [
        ("buy", "0.02", "50000", "15", "2024-02-10T16:20:31.512300Z"),
        ("buy", "0.01996", "52000", "2.08", "2024-02-11T08:00:00Z"),
        ("sell", "0.01", "53000", "0.85", "2024-02-12T09:30:00Z")]),
    "strike.csv": ("strike", 5, 2, 0, [
        ("buy", "0.02206126", "45328.32", "0.99", "2024-01-02T15:04:05Z"),
        ("sell", "0.02", "68990", "6.9", "2024-04-01T10:00:00Z"),
        ("buy", "0.0007", "71000", "0.071", "2024-05-20T11:11:11Z")]),
    "river.csv": ("river", 6, 3, 1, [
        ("buy", "0.0234", str(Decimal("1000.00") / Decimal("0.0234")), "0", "2024-01-15T14:00:00Z"),
        ("sell", "0.01", "69000", "1.5", "2024-03-10T18:45:00Z")]),
    "swan.csv": ("swan", 5, 4, 0, [
        ("buy", "0.00108054", "91628", "0.99", "2024-11-16T17:30:06Z")]),
    "bitstamp.csv": ("bitstamp", 7, 3, 1, [
        ("buy", "0.04", "46000", "3.68", "2024-01-11T09:15:42Z"),
        ("sell", "0.01", "52000", "1.04", "2024-02-20T14:00:00Z"),
        ("buy", "0.00999", "63000", "0.63", "2024-03-03T12:00:00Z")]),
    "binance.csv": ("binance", 7, 1, 3, [
        ("buy", "0.00999", "41500", "0.415", "2024-01-20T10:00:00Z"),
        ("sell", "0.005", "42000", "0.21", "2024-01-21T11:00:00Z"),
        ("buy", "0.0025", "40000", "0.1", "2024-01-24T14:00:00Z")]),
}


def trade_key(side: str, amount: str, price: str, fee: str, at: str) -> tuple:
    return side, Decimal(amount), Decimal(price), Decimal(fee), at.replace("+00:00", "Z")


async def test_every_exchange_fixture_imports_its_btc_trades_dry_and_for_real(system, alice) -> None:
    api = alice.client
    assert sorted(EXPECTED) == sorted(path.name for path in FIXTURES.glob("*.csv"))
    for name, (file_format, total, skipped, errors, trades) in EXPECTED.items():
        pid = (await api.post("/v1/portfolios", json={"name": name})).json()["portfolio_id"]
        files = {"file": (name, (FIXTURES / name).read_bytes(), "text/csv")}
        url = f"/v1/portfolios/{pid}/transactions/import"

        dry = await api.post(url, params={"dry_run": "true"}, files=files)
        assert dry.status_code == 200, dry.text[:400]
        report = dry.json()
        assert (report["format"], report["total_rows"], report["valid_rows"], report["imported"]) == (
            file_format, total, len(trades), 0), name
        assert sum(row["skipped"] for row in report["rows"]) == skipped, name
        assert sum(not row["ok"] and not row["skipped"] for row in report["rows"]) == errors, name
        assert all(row["error"] for row in report["rows"] if not row["ok"]), name
        assert sorted(trade_key(r["side"], r["amount_btc"], r["price_usd"], r["fee_usd"], r["at"])
                      for r in report["rows"] if r["ok"]) == sorted(trade_key(*t) for t in trades), name

        if errors:  # a file with bad rows saves nothing unless asked to skip them
            refused = (await api.post(url, files=files)).json()
            assert refused["imported"] == 0, name
        done = await api.post(url, params={"skip_invalid": "true"}, files=files)
        assert done.status_code == 200 and done.json()["imported"] == len(trades), done.text[:400]

        listed = (await api.get(f"/v1/portfolios/{pid}/transactions", params={"limit": 100})).json()
        assert sorted(trade_key(t["side"], t["amount_btc"], t["price_usd"], t["fee_usd"], t["at"]) for t in listed) == (
            sorted(trade_key(*t) for t in trades)), name
        assert {t["status"] for t in listed} == {"priced"} and {t["price_source"] for t in listed} == {"user"}, name
        held = sum((Decimal(a) if s == "buy" else -Decimal(a) for s, a, *_ in trades), Decimal(0))
        metrics = (await api.get(f"/v1/portfolios/{pid}")).json()["metrics"]
        assert Decimal(metrics["holdings_btc"]) == held, name


async def test_the_import_routes_description_names_every_format(system, alice) -> None:
    from contracts.portfolios import IMPORT_FORMATS

    paths = (await alice.client.get("/openapi.json")).json()["paths"]
    description = paths["/v1/portfolios/{portfolio_id}/transactions/import"]["post"]["description"]
    for name, title in IMPORT_FORMATS.items():
        assert f"`{name}`" in description and (name == "generic" or title in description), name
