"""The CryptoCompare provider against a local fake server, CSV imports, and the operator HTTP API."""

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from price.cli import import_csv
from price.main import http_app
from price.provider import CryptoCompareProvider, ProviderRefused, ProviderUnavailable

from tests.support.fake_cryptocompare import FakeCryptoCompare, synthetic_open

START = 1704067200


def provider_for(url: str, attempts: int = 3) -> CryptoCompareProvider:
    return CryptoCompareProvider(url, attempts=attempts, backoff_seconds=0.01)


async def test_history_pages_backwards_over_more_than_2000_hours() -> None:
    fake = FakeCryptoCompare().start()
    provider = provider_for(fake.url)
    try:
        until = START + 4999 * 3600
        pages = [page async for page in provider.history(START, until)]
    finally:
        await provider.close()
        fake.stop()
    hours = [row.hour for page in pages for row in page]
    assert len(pages) == 3
    assert sorted(set(hours)) == [START + i * 3600 for i in range(5000)]
    assert [int(r["toTs"]) for r in fake.fake.requests] == [until, until - 2001 * 3600, until - 4002 * 3600]
    assert pages[0][0].open == synthetic_open(pages[0][0].hour)


async def test_rate_limit_429_is_retried_then_succeeds() -> None:
    fake = FakeCryptoCompare(fail_with_429=2).start()
    provider = provider_for(fake.url, attempts=3)
    try:
        _, rows, _ = await provider.page(START, limit=10)
    finally:
        await provider.close()
        fake.stop()
    assert len(rows) == 11
    assert len(fake.fake.requests) == 3


async def test_persistent_rate_limit_is_provider_unavailable() -> None:
    fake = FakeCryptoCompare(fail_with_429=10).start()
    provider = provider_for(fake.url, attempts=2)
    try:
        with pytest.raises(ProviderUnavailable, match="after 2 attempts"):
            await provider.page(START)
    finally:
        await provider.close()
        fake.stop()


async def test_error_response_stops_cleanly_with_its_message() -> None:
    fake = FakeCryptoCompare(error_message="toTs is before the first data").start()
    provider = provider_for(fake.url)
    try:
        with pytest.raises(ProviderRefused, match="toTs is before the first data"):
            [page async for page in provider.history(START, START + 3600)]
    finally:
        await provider.close()
        fake.stop()
    assert len(fake.fake.requests) == 1


async def test_leading_all_zero_rows_are_skipped_and_end_the_paging() -> None:
    first_real = START + 3000 * 3600
    fake = FakeCryptoCompare(first_real_hour=first_real).start()
    provider = provider_for(fake.url)
    try:
        rows = [row async for page in provider.history(START - 10000 * 3600, START + 4000 * 3600) for row in page]
    finally:
        await provider.close()
        fake.stop()
    assert min(r.hour for r in rows) == first_real
    assert all(r.open > 0 for r in rows)
    assert len(fake.fake.requests) == 1, "stops at the first zero rows, not at `since`"


async def test_importing_a_file_twice_changes_nothing(price_settings, shared_candles_csv: Path) -> None:
    read, inserted, errors = await import_csv(price_settings, shared_candles_csv, quiet=True)
    assert (read, inserted, errors) == (6115, 0, [])


async def test_bad_rows_are_reported_with_their_line_numbers(price_settings, tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(
        "time,open,high,low,close,volumefrom,volumeto\n"
        "1600000000,10,11,9,10.5,1,10\n"  # 1600000000 is not an hour start
        "1600002000,x,11,9,10.5,1,10\n"
        "1600002000,10,11,9,10.5,1,10\n".replace("1600002000,x", "1599998400,x")
    )
    read, inserted, errors = await import_csv(price_settings, path, quiet=True)
    assert [(e.line, e.message.split(" ")[0]) for e in errors] == [(2, "time"), (3, "open")]
    assert "not the start of an hour" in errors[0].message
    assert read == 1


@pytest.fixture
async def http(price_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(price_app)), base_url="http://price") as c:
        yield c


async def test_http_price_at_uses_the_open_of_the_hour(http) -> None:
    response = await http.get(f"/prices/at/{START + 1800}")
    assert response.status_code == 200
    assert response.json()["price_usd"] == "42288.58"
    assert Decimal(response.json()["candle"]["close"]) == Decimal("42452.66")


async def test_http_time_outside_the_data_is_404_with_a_sentence(http) -> None:
    response = await http.get("/prices/at/1000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "before the first stored BTC-USD candle" in response.json()["error"]["message"]
    future = await http.get("/prices/at/99999999999")
    assert future.status_code == 404 and "future" in future.json()["error"]["message"]


async def test_http_malformed_time_is_422_in_the_envelope(http) -> None:
    response = await http.get("/prices/at/yesterday")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation"


async def test_http_time_out_of_range_is_422_that_says_so(http) -> None:
    huge = "99999999999999999999"
    for path, params in [(f"/prices/at/{huge}", None), ("/prices/at/253402300800", None),
                         ("/prices", {"start": huge, "end": huge}), ("/prices", {"start": "0", "end": huge}),
                         ("/prices", {"start": "-1", "end": "0"})]:
        response = await http.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation" and "out of range" in error["message"]
    for unix in ("1_000", "²", "١٢"):
        response = await http.get(f"/prices/at/{unix}")
        assert response.status_code == 422 and "ASCII digits" in response.json()["error"]["message"]


async def test_http_range_is_capped_and_the_cap_is_stated(http) -> None:
    ok = await http.get("/prices", params={"start": START, "end": START + 5 * 3600})
    assert [c["hour"] for c in ok.json()] == [START + i * 3600 for i in range(6)]
    too_long = await http.get("/prices", params={"start": START, "end": START + 6000 * 3600})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"] == {"cap_hours": 5000}


async def test_http_latest_health_and_metrics(http) -> None:
    latest = await http.get("/prices/latest")
    assert latest.json()["hour"] == 1726074000
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "broker": True}
    assert "price_messages_total" in (await http.get("/metrics")).text
    assert (await http.get("/nope")).json()["error"]["code"] == "not_found"
