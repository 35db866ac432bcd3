"""The real services for system benchmarks: scratch databases, a scratch vhost, the 2024 candles."""

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.common import BUNDLED_CANDLES, RABBIT_URL, ROOT, drop_database, scratch_database
from scripts.launcher import Launcher


@contextlib.contextmanager
def running_stack(*names: str, env: dict[str, str] | None = None) -> Iterator[Launcher]:
    """The named services on scratch databases (the price one holding the 2024 candles); `env` adds settings."""
    vhost = f"bitfolio_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)
    loop = asyncio.new_event_loop()
    urls = {name: loop.run_until_complete(scratch_database(name)) for name in ("price", "portfolio", "gateway")}
    subprocess.run([sys.executable, "-m", "price.cli", "import-csv", str(BUNDLED_CANDLES)], check=True,
                   capture_output=True, env={"PRICE_DATABASE_URL": urls["price"], "PATH": str(Path(sys.executable).parent)})
    launcher = Launcher(RABBIT_URL.rstrip("/") + "/" + vhost, urls, ROOT / ".run" / "bench-logs",
                        extra_env={"PRICE_SYNC_ENABLED": "false", "PRICE_PROVIDER_ATTEMPTS": "1",
                                   "PRICE_PROVIDER_BASE_URL": "http://127.0.0.1:9", "GATEWAY_ENV": "test",
                                   "GATEWAY_REQUESTS_PER_MINUTE": "100000000", "PRICE_LOG_LEVEL": "WARNING",
                                   "PORTFOLIO_LOG_LEVEL": "WARNING", "GATEWAY_LOG_LEVEL": "WARNING", **(env or {})})
    try:
        for name in names:
            launcher.start(name)
        yield launcher
    finally:
        launcher.stop_all()
        for url in urls.values():
            loop.run_until_complete(drop_database(url))
        loop.close()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
