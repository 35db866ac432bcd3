"""Web fixtures: the whole system plus the dashboard process, and Debian's Chromium driven by Playwright."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.infrastructure import ROOT
from tests.support.system import System, system  # noqa: F401  (the session fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "test-artifacts" / "web"


@pytest.fixture(scope="session")
def web_url(system: System) -> Iterator[str]:  # noqa: F811
    service = system.launcher.start("web")
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make system-deps installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
