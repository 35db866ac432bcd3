"""Shared pieces of the benchmarks: timing, a scratch database, and the results file every benchmark writes."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADMIN_URL = os.environ.get("BITFOLIO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_URL = os.environ.get("BITFOLIO_BENCH_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")
SHARED_CANDLES = ROOT.parent / "shared" / "data" / "btc-usd-hourly-2024.csv"
BUNDLED_CANDLES = ROOT / "services" / "price" / "seed" / "btc-usd-hourly-2024.csv.gz"
"""The same 2024 candles, shipped with the price service (its import reads .csv.gz), so a clone alone can run."""


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    goal: str
    met: bool

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")


def write_results(benchmark: str, figures: list[Figure], notes: str = "") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": benchmark, "ran_at": datetime.now(UTC).isoformat(), "notes": notes,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "figures": [{**asdict(f), "ratio": round(f.ratio, 3)} for f in figures]}
    (RESULTS / f"{benchmark}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{benchmark}")
    for f in figures:
        print(f"  {f.name:<46} {f.value:>12.3f} {f.unit:<8} baseline {f.baseline_name}: {f.baseline_value:.3f} "
              f"→ ratio {f.ratio:.2f}  goal {f.goal}: {'met' if f.met else 'NOT met'}")


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def scratch_database(service: str) -> str:
    """A fresh database migrated with the service's real migrations; returns its SQLAlchemy URL."""
    name = f"bench_{service}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "services" / service / "alembic.ini"),
                    "-x", f"database_url={url}", "upgrade", "head"], check=True, capture_output=True)
    return url


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
