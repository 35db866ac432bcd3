"""A real browser: two portfolios, a buy, "Move BTC" to the other one, and both portfolios change."""

import re
from decimal import Decimal

from playwright.async_api import expect

from tests.web.test_dashboard_in_chromium import register, usd


async def new_portfolio(page, web_url: str, name: str) -> str:
    await page.goto(f"{web_url}/")
    await page.get_by_role("button", name="New portfolio").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.wait_for_url(re.compile(r".*/portfolio/[0-9a-f]+$"))
    return page.url


async def test_move_btc_to_another_portfolio_changes_both(browser, web_url, screenshot_dir) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await context.new_page()
    await register(page, web_url)
    vault = await new_portfolio(page, web_url, "Vault")
    exchange = await new_portfolio(page, web_url, "Exchange")

    await page.get_by_role("button", name="Add trade").click()
    await page.get_by_label("Amount (BTC)").fill("1")
    await page.get_by_label(re.compile("Date and time")).fill("2024-03-01T10:15")
    await page.get_by_label(re.compile("Price")).fill("60000")
    await page.get_by_role("button", name="Save", exact=True).click()
    table = page.locator(".q-table")
    await expect(table.get_by_text("priced")).to_be_visible(timeout=20_000)

    await page.get_by_role("button", name="Move BTC").click()
    await page.get_by_label("To portfolio").click()
    await page.get_by_role("option", name="Vault").click()
    await page.get_by_label("Amount sent (BTC)").fill("0.4")
    await page.get_by_label(re.compile("Date and time")).fill("2024-04-01T09:00")
    await page.get_by_label(re.compile("Network fee")).fill("0.0001")
    await page.get_by_label("Note").fill("to the hardware wallet")
    await page.get_by_role("button", name="Move", exact=True).click()

    await expect(table.get_by_text("moved out")).to_be_visible(timeout=10_000)
    holdings = page.locator(".q-card", has=page.get_by_text("Holdings", exact=True))
    await expect(holdings.get_by_text("0.60000000 BTC")).to_be_visible(timeout=20_000)
    moved = usd(Decimal("0.4") * Decimal("60000"))
    await expect(page.locator(".q-card", has=page.get_by_text("Cost basis", exact=True)).get_by_text(
        usd(Decimal("36000")))).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "10-transfer-out.png"), full_page=True)

    await page.goto(vault)
    await expect(page.locator(".q-table").get_by_text("moved in")).to_be_visible(timeout=10_000)
    await expect(page.locator(".q-table").get_by_text("priced")).to_be_visible(timeout=20_000)
    await expect(page.locator(".q-card", has=page.get_by_text("Holdings", exact=True)).get_by_text(
        "0.39990000 BTC")).to_be_visible()
    await expect(page.locator(".q-card", has=page.get_by_text("Cost basis", exact=True)).get_by_text(
        moved)).to_be_visible()
    await expect(page.locator(".q-card", has=page.get_by_text("Realized", exact=True)).get_by_text(
        "$0.00")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "11-transfer-in.png"), full_page=True)

    # edited from the destination's table: both portfolios follow
    await page.locator(".q-table tbody tr", has_text="moved in").locator("button").first.click()
    await expect(page.get_by_text("Edit transfer")).to_be_visible()
    await page.get_by_label("Amount sent (BTC)").fill("0.5")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(".q-card", has=page.get_by_text("Holdings", exact=True)).get_by_text(
        "0.49990000 BTC")).to_be_visible(timeout=20_000)
    await page.goto(exchange)
    await expect(page.locator(".q-card", has=page.get_by_text("Holdings", exact=True)).get_by_text(
        "0.50000000 BTC")).to_be_visible(timeout=20_000)
    await context.close()
