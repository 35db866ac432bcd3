"""A real browser: register, create a portfolio, add a 2024 buy, watch it go from pending to priced live."""

import csv
import re
from decimal import Decimal
from uuid import uuid4

from playwright.async_api import expect

from tests.support.infrastructure import open_candles

PASSWORD = "a long and unusual passphrase 42"
TRADE_LOCAL = "2024-03-01T10:15"  # the browser runs in UTC here (timezone_id below)
TRADE_HOUR = 1709287200  # 2024-03-01 10:00 UTC


def open_of(hour: int) -> Decimal:
    with open_candles() as handle:
        return next(Decimal(r["open"]) for r in csv.DictReader(handle) if int(r["unix"]) == hour)


def usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,.2f}"


async def register(page, web_url: str) -> str:
    email = f"web-{uuid4().hex[:8]}@example.com"
    await page.goto(f"{web_url}/login")
    await page.get_by_role("tab", name="Register").click()
    await page.get_by_label("Email").nth(1).fill(email)
    await page.get_by_label("Password").nth(1).fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{web_url}/")
    return email


async def test_trade_turns_priced_live_and_another_user_sees_none_of_it(browser, web_url, screenshot_dir) -> None:
    alice = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await alice.new_page()
    await register(page, web_url)
    await expect(page.get_by_text("No portfolios yet")).to_be_visible()

    await page.get_by_role("button", name="New portfolio").click()
    await page.get_by_label("Name").fill("Browser stack")
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.wait_for_url(re.compile(r".*/portfolio/[0-9a-f]+$"))
    await expect(page.get_by_text("Browser stack")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "01-empty-portfolio.png"), full_page=True)

    await page.get_by_role("button", name="Add trade").click()
    await page.get_by_label("Amount (BTC)").fill("0.5")
    await page.get_by_label(re.compile("Date and time")).fill(TRADE_LOCAL)
    await page.get_by_label(re.compile("Fee")).fill("2.5")
    await page.get_by_role("button", name="Save", exact=True).click()

    price = open_of(TRADE_HOUR)
    cost = Decimal("0.5") * price + Decimal("2.5")
    table = page.locator(".q-table")
    await expect(table.get_by_text("priced")).to_be_visible(timeout=20_000)
    await expect(table.get_by_text(usd(price))).to_be_visible()
    await expect(table.get_by_text(usd(cost))).to_be_visible()
    invested_card = page.locator(".q-card", has=page.get_by_text("Invested", exact=True))
    await expect(invested_card.get_by_text(usd(cost))).to_be_visible()
    await expect(page.locator(".q-card", has=page.get_by_text("Holdings", exact=True)).get_by_text(
        "0.50000000 BTC")).to_be_visible()
    chart = page.locator("[_echarts_instance_]").first
    await expect(chart.locator("canvas").first).to_be_visible()
    await page.wait_for_timeout(800)
    await page.screenshot(path=str(screenshot_dir / "02-priced-trade-and-chart.png"), full_page=True)

    # a sell over the holdings shows the API's reason
    await page.get_by_role("button", name="Add trade").click()
    await page.get_by_text("Sell", exact=True).click()
    await page.get_by_label("Amount (BTC)").fill("3")
    await page.get_by_label(re.compile("Date and time")).fill("2024-04-01T10:00")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_text("you can't sell 3 BTC")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "03-sell-refused.png"), full_page=True)
    await alice.close()

    bob = await browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="UTC")
    other = await bob.new_page()
    await register(other, web_url)
    await expect(other.get_by_text("No portfolios yet")).to_be_visible()
    await expect(other.get_by_text("Browser stack")).to_have_count(0)
    await other.screenshot(path=str(screenshot_dir / "04-other-user-phone.png"), full_page=True)
    await bob.close()


async def test_login_shows_field_errors_and_the_demo_button(browser, web_url, screenshot_dir) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(f"{web_url}/login")
    await page.get_by_role("tab", name="Register").click()
    await page.get_by_label("Email").nth(1).fill("someone@example.com")
    await page.get_by_label("Password").nth(1).fill("short")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("at least 10 characters")).to_be_visible()
    await expect(page.get_by_role("button", name="Try the demo")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "00-login-errors.png"))
    await context.close()
