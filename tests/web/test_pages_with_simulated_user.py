"""Page logic with NiceGUI's simulated user (no browser), against the real gateway and services."""

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

MAIN = Path(__file__).with_name("user_main.py")
PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
async def user(system, monkeypatch) -> AsyncIterator[User]:
    monkeypatch.setenv("WEB_GATEWAY_URL", system.gateway_url)
    monkeypatch.setenv("WEB_RABBIT_URL", system.rabbit_url)
    async with user_simulation(main_file=MAIN) as simulated:
        yield simulated


async def test_register_create_a_portfolio_and_open_it(user: User) -> None:
    await user.open("/login")
    await user.should_see("Try the demo")
    user.find(marker="register-email").type(f"sim-{uuid4().hex[:8]}@example.com")
    user.find(marker="register-password").type(PASSWORD)
    user.find(marker="register-submit").click()
    await user.should_see("No portfolios yet", retries=100)  # register and log in hash the password twice (argon2)
    user.find(marker="new-portfolio").click()
    user.find(marker="portfolio-name").type("Simulated stack")
    user.find(marker="create-portfolio").click()
    await user.should_see("Simulated stack")
    await user.should_see("Max drawdown", retries=100)
    await user.should_see("Add trade")


async def test_a_short_password_shows_the_apis_reason(user: User) -> None:
    await user.open("/login")
    user.find(marker="register-email").type("short@example.com")
    user.find(marker="register-password").type("short")
    user.find(marker="register-submit").click()
    await user.should_see("at least 10 characters")


async def test_pages_send_a_visitor_to_the_login(user: User) -> None:
    await user.open("/")
    await user.should_see("Try the demo")
