"""Benchmark: importing candles (the shared 6,115 hours and a synthetic 145,000-hour history) against a raw COPY."""

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

import asyncpg
from price.cli import import_csv
from price.settings import Settings

from bench.common import SHARED_CANDLES, Figure, drop_database, plain, scratch_database, timed, write_results

COLUMNS = ("hour", "open", "high", "low", "close", "volume", "source")


def synthetic_csv(path: Path, hours: int) -> list[tuple]:
    start = 1279324800  # 2010-07-17
    rows, lines = [], ["time,open,high,low,close,volumefrom,volumeto"]
    for i in range(hours):
        hour = start + i * 3600
        price = Decimal(100) + Decimal(i % 90_000) / 3
        rows.append((hour, price, price + 1, price - 1, price, Decimal("1.5"), "synthetic"))
        lines.append(f"{hour},{price},{price + 1},{price - 1},{price},1.5,1")
    path.write_text("\n".join(lines) + "\n")
    return rows


def shared_rows() -> list[tuple]:
    import csv

    with SHARED_CANDLES.open() as handle:
        return [(int(r["unix"]), Decimal(r["open"]), Decimal(r["high"]), Decimal(r["low"]), Decimal(r["close"]),
                 Decimal(r["volume"]), "raw") for r in csv.DictReader(handle)]


async def raw_copy(url: str, rows: list[tuple]) -> float:
    connection = await asyncpg.connect(plain(url))
    try:
        await connection.execute("CREATE TABLE raw_candles (LIKE candles INCLUDING ALL)")
        return await timed(lambda: connection.copy_records_to_table("raw_candles", records=rows, columns=COLUMNS))
    finally:
        await connection.close()


async def measure(label: str, csv_path: Path, rows: list[tuple], goal_seconds: float) -> list[Figure]:
    url = await scratch_database("price")
    try:
        settings = Settings(database_url=url, env="test")
        imported = await timed(lambda: import_csv(settings, csv_path, quiet=True))
        baseline = await raw_copy(url, rows)
    finally:
        await drop_database(url)
    ratio = imported / baseline
    return [Figure(f"import {label} ({len(rows):,} hours)", imported, "s", "raw asyncpg COPY", baseline,
                   f"< {goal_seconds} s and ≤ 2× COPY", imported < goal_seconds and ratio <= 2)]


async def main() -> None:
    figures = []
    if SHARED_CANDLES.exists():
        figures += await measure("shared 2024 CSV", SHARED_CANDLES, shared_rows(), 1.0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic.csv"
        rows = synthetic_csv(path, 145_000)
        figures += await measure("synthetic 2010→now", path, rows, 5.0)
    write_results("price_import", figures, "import = parse + validate + COPY into a temp table + INSERT … ON "
                                           "CONFLICT DO NOTHING; baseline = COPY of the same rows into an empty table")


if __name__ == "__main__":
    asyncio.run(main())
