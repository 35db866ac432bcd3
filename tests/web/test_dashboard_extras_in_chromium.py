"""A real browser: the totals over every portfolio with the latest price, BTC in sats, an exchange export imported
through the dialog, and the read-only demo showing no write actions."""

import re
from decimal import Decimal
from uuid import uuid4

import httpx
from bitfolio_web import formatting as fmt
from playwright.async_api import expect

from tests.support.infrastructure import ROOT

PASSWORD = "a long and unusual passphrase 42"
FIXTURES = ROOT / "tests" / "fixtures" / "exchanges"


async def user_with_portfolios(gateway_url: str, trades: dict[str, list[dict]]) -> tuple[str, list[dict]]:
    """A fresh account with a portfolio per entry of `trades` (typed prices), and the portfolios as listed."""
    email = f"extras-{uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as api:
        assert (await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
        token = (await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        for name, rows in trades.items():
            pid = (await api.post("/v1/portfolios", json={"name": name})).json()["portfolio_id"]
            for row in rows:
                assert (await api.post(f"/v1/portfolios/{pid}/transactions", json=row)).status_code == 202
        listed = (await api.get("/v1/portfolios")).json()
    return email, listed


async def log_in(page, web_url: str, email: str) -> None:
    await page.goto(f"{web_url}/login")
    await page.get_by_label("Email").first.fill(email)
    await page.get_by_label("Password").first.fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{web_url}/")


async def test_the_list_shows_totals_and_the_latest_price_and_sats_stay_on(browser, system, web_url,
                                                                          screenshot_dir) -> None:
    email, listed = await user_with_portfolios(system.gateway_url, {
        "Cold": [{"side": "buy", "amount_btc": "1", "at": "2024-02-01T00:00:00Z", "price_usd": "40000",
                  "fee_usd": "10"},
                 {"side": "sell", "amount_btc": "0.25", "at": "2024-03-01T00:00:00Z", "price_usd": "60000"}],
        "Stack": [{"side": "buy", "amount_btc": "0.00012345", "at": "2024-05-01T00:00:00Z", "price_usd": "60000"}],
    })
    metrics = [p["metrics"] for p in listed]
    value = sum((Decimal(m["current_value_usd"]) for m in metrics), Decimal(0))
    net = sum((Decimal(m["net_result_usd"]) for m in metrics), Decimal(0))
    invested = sum((Decimal(m["invested_usd"]) for m in metrics), Decimal(0))
    async with httpx.AsyncClient(base_url=system.gateway_url) as api:
        latest = (await api.get("/v1/prices/latest")).json()

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await context.new_page()
    await log_in(page, web_url, email)
    totals = page.locator(".q-card", has=page.get_by_text("Total value"))
    await expect(totals.get_by_text(fmt.usd(value), exact=True)).to_be_visible()
    await expect(totals.get_by_text(fmt.usd(net, signed=True), exact=True)).to_be_visible()
    await expect(totals.get_by_text(fmt.usd(invested), exact=True)).to_be_visible()
    await expect(totals.get_by_text(fmt.pct(net / invested * 100), exact=True)).to_be_visible()
    await expect(totals.get_by_text("0.75012345 BTC", exact=True)).to_be_visible()
    await expect(totals.get_by_text(f"BTC {fmt.usd(latest['price_usd'])} · as of "
                                    f"{fmt.local_time(latest['as_of'], 'UTC')}")).to_be_visible()
    await totals.locator("i", has_text="info_outline").hover()
    await expect(page.get_by_text("ROI of the total")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "10-portfolio-totals.png"), full_page=True)

    await page.get_by_role("button", name="sats").click()
    await expect(totals.get_by_text("75,012,345 sats", exact=True)).to_be_visible()
    cards = page.locator(".q-card", has=page.get_by_role("link", name="Stack"))
    await expect(cards.get_by_text("12,345 sats", exact=True)).to_be_visible()
    await page.reload()  # remembered for the browser session, on every page
    await expect(totals.get_by_text("75,012,345 sats", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Cold").click()
    await page.wait_for_url(re.compile(r".*/portfolio/[0-9a-f]+$"))
    holdings = page.locator(".q-card", has=page.get_by_text("Holdings", exact=True))
    await expect(holdings.get_by_text("75,000,000 sats", exact=True)).to_be_visible()
    await expect(page.locator(".q-table").get_by_text("25,000,000 sats", exact=True)).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "11-portfolio-in-sats.png"), full_page=True)
    await page.get_by_role("button", name="BTC", exact=True).click()
    await expect(holdings.get_by_text("0.75000000 BTC", exact=True)).to_be_visible()
    await context.close()


async def test_an_exchange_export_is_previewed_by_its_exchange_name_and_imported(browser, system, web_url,
                                                                                screenshot_dir) -> None:
    email, _ = await user_with_portfolios(system.gateway_url, {"From Kraken": []})
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await context.new_page()
    await log_in(page, web_url, email)
    await page.get_by_role("link", name="From Kraken").click()
    await page.get_by_role("button", name="Import CSV").click()
    for exchange in ("Coinbase", "Kraken ledgers", "Strike", "River", "Swan Bitcoin", "Bitstamp",
                     "Binance trade history"):
        await expect(page.get_by_text(re.compile(f"exchanges: .*{exchange}"))).to_be_visible()
    await page.locator("input[type=file]").set_input_files(str(FIXTURES / "kraken-ledgers-old.csv"))
    await expect(page.get_by_text("Kraken ledgers file: 2 of 10 rows are ready to import, 1 have errors.")
                 ).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("the USD side of the BTC trade on line 4")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "12-kraken-import-preview.png"), full_page=True)
    await page.get_by_role("button", name="Import the valid rows only").click()
    await expect(page.get_by_text("Imported 2 transactions.")).to_be_visible()
    await expect(page.locator(".q-table").get_by_role("cell", name="0.05005000 BTC", exact=True)).to_be_visible()
    await context.close()


async def test_the_demo_shows_no_write_actions(browser, system, web_url, screenshot_dir) -> None:
    from gateway.cli import seed_demo_account
    from gateway.settings import Settings

    await seed_demo_account(Settings(env="test", database_url=system.database_urls["gateway"],
                                     rabbit_url=system.rabbit_url))
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await context.new_page()
    await page.goto(f"{web_url}/login")
    await page.get_by_role("button", name="Try the demo").click()
    await page.wait_for_url(f"{web_url}/")
    await expect(page.get_by_text("Read-only demo")).to_be_visible()
    card = page.locator(".q-card", has=page.get_by_role("link", name="Demo: 2024 stack"))
    await expect(card).to_be_visible()
    await expect(page.get_by_text("Total value")).to_be_visible()
    await expect(page.get_by_role("button", name="New portfolio")).to_have_count(0)
    await expect(card.locator("button")).to_have_count(1)  # Open only: no Rename, no Delete
    await page.screenshot(path=str(screenshot_dir / "13-demo-list.png"), full_page=True)

    await card.get_by_role("link").click()
    await page.wait_for_url(re.compile(r".*/portfolio/[0-9a-f]+$"))
    table = page.locator(".q-table")
    await expect(table.get_by_text("priced").first).to_be_visible(timeout=30_000)
    await expect(page.get_by_text(re.compile("^Cost basis: "))).to_be_visible()
    for action in ("Add trade", "Import CSV", "Save goal"):
        await expect(page.get_by_role("button", name=action)).to_have_count(0)
    await expect(page.get_by_role("button", name="Export CSV")).to_be_visible()  # reading is still fine
    await expect(page.get_by_label("Goal in USD")).to_have_count(0)
    await expect(table.locator("i", has_text=re.compile("^(edit|delete)$"))).to_have_count(0)
    await page.screenshot(path=str(screenshot_dir / "14-demo-portfolio.png"), full_page=True)
    await context.close()
