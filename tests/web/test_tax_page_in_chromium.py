"""A real browser: from a portfolio to its tax page, pick a year, read the totals and lines, download the CSV."""

import csv
import io
import re

import httpx
from playwright.async_api import expect

from tests.web.test_dashboard_in_chromium import PASSWORD, register

TRADES = [("buy", "1", "2022-06-01T12:00:00Z", "20000"), ("buy", "1", "2023-03-01T12:00:00Z", "23000"),
          ("sell", "0.5", "2023-09-01T12:00:00Z", "26000"), ("sell", "1", "2024-03-01T12:00:00Z", "62000")]


async def portfolio_with_sells(gateway_url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as api:
        tokens = (await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        api.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        pid = (await api.post("/v1/portfolios", json={"name": "Taxable stack"})).json()["portfolio_id"]
        for side, amount, at, price in TRADES:
            recorded = await api.post(f"/v1/portfolios/{pid}/transactions",
                                      json={"side": side, "amount_btc": amount, "at": at, "price_usd": price})
            assert recorded.status_code == 202, recorded.text
        return str(pid)


async def test_tax_page_shows_a_years_totals_and_lines_and_downloads_the_csv(system, browser, web_url,
                                                                           screenshot_dir) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York")
    page = await context.new_page()
    email = await register(page, web_url)
    pid = await portfolio_with_sells(system.gateway_url, email)
    await page.goto(f"{web_url}/portfolio/{pid}")
    await page.get_by_role("button", name="Tax report").click()
    await page.wait_for_url(re.compile(rf".*/portfolio/{pid}/tax$"))

    # the latest sell's year first, lots by FIFO (the portfolio averages): 0.5 of the 2022 lot is long term,
    # 0.5 of the lot bought 2023-03-01 is sold on its anniversary, short term
    lines = page.locator(".q-table tbody tr")
    await expect(lines).to_have_count(2, timeout=20_000)
    await expect(page.get_by_text("2 lines for 2024, lots taken FIFO", exact=False)).to_be_visible()
    def total(label: str):
        return page.locator(".q-card", has=page.get_by_text(label, exact=True)).locator(".metric-value")
    await expect(total("Gain or loss")).to_have_text("+$40,500.00")
    await expect(total("Short-term")).to_have_text("+$19,500.00")
    await expect(total("Long-term")).to_have_text("+$21,000.00")
    await expect(total("Proceeds")).to_have_text("$62,000.00")
    await expect(lines.nth(0)).to_contain_text("2022-06-01")
    await expect(lines.nth(0)).to_contain_text("Long")
    await expect(lines.nth(1)).to_contain_text("2023-03-01")
    await expect(lines.nth(1)).to_contain_text("Short")
    await page.screenshot(path=str(screenshot_dir / "05-tax-report-2024.png"), full_page=True)

    await page.get_by_label("Year").click()
    await page.get_by_role("option", name="2023", exact=True).click()
    await expect(page.get_by_text("1 line for 2023", exact=False)).to_be_visible()
    await expect(lines).to_have_count(1)
    await expect(lines.nth(0)).to_contain_text("2023-09-01")
    await expect(total("Gain or loss")).to_have_text("+$3,000.00")

    async with page.expect_download() as started:
        await page.get_by_role("button", name="Download CSV").click()
    download = await started.value
    assert re.fullmatch(r"bitfolio-[0-9a-f]{8}-tax-2023-fifo\.csv", download.suggested_filename)
    rows = list(csv.reader(io.StringIO((await download.path()).read_text(encoding="utf-8"))))
    assert rows == [["Description", "Date acquired", "Date sold", "Proceeds", "Cost basis", "Gain or loss", "Term"],
                    ["0.50000000 BTC", "06/01/2022", "09/01/2023", "13000.00", "10000.00", "3000.00", "Long-term"]]
    await page.screenshot(path=str(screenshot_dir / "06-tax-report-2023.png"), full_page=True)
    await context.close()
