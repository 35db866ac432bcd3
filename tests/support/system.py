"""The whole system for e2e, web and fault tests: migrated databases, the 2024 candles, real service processes."""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.launcher import Launcher
from tests.support.infrastructure import ROOT, RUN_ID

LOG_DIR = ROOT / "test-artifacts" / f"logs-{RUN_ID}"


@dataclass
class System:
    launcher: Launcher
    rabbit_url: str
    database_urls: dict[str, str]

    @property
    def gateway_url(self) -> str:
        return self.launcher.services["gateway"].url

    def url(self, name: str) -> str:
        return self.launcher.services[name].url


def import_candles(database_url: str, csv_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "price.cli", "import-csv", str(csv_path)], check=True, capture_output=True,
                   env={"PRICE_DATABASE_URL": database_url, "PATH": str(Path(sys.executable).parent)})


@pytest.fixture(scope="session")
def system(make_database, make_vhost, shared_candles_csv: Path) -> Iterator[System]:
    """price, portfolio and gateway as real processes on free ports, in their own vhost and databases."""
    rabbit_url = make_vhost("system")
    loop = asyncio.new_event_loop()
    try:
        urls = {name: loop.run_until_complete(make_database(name)) for name in ("price", "portfolio", "gateway")}
    finally:
        loop.close()
    import_candles(urls["price"], shared_candles_csv)
    launcher = Launcher(rabbit_url, urls, LOG_DIR, extra_env={"PRICE_SYNC_ENABLED": "false",
                                                              "PRICE_PROVIDER_ATTEMPTS": "1",
                                                              "PRICE_PROVIDER_BASE_URL": "http://127.0.0.1:9",
                                                              # every test client shares 127.0.0.1
                                                              "GATEWAY_FAILED_LOGINS_PER_IP": "100000",
                                                              "GATEWAY_REGISTRATIONS_PER_IP_PER_HOUR": "100000",
                                                              "GATEWAY_TOKEN_REQUESTS_PER_IP_PER_MINUTE": "100000"})
    try:
        for name in ("price", "portfolio", "gateway"):
            launcher.start(name)
        yield System(launcher, rabbit_url, urls)
    finally:
        launcher.stop_all()
