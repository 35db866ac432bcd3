"""Command line of the price service: serve, migrate, import-csv, seed, backfill, sync."""

import asyncio
import gzip
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import typer
import uvloop
from contracts.database import migrate as migrate_database
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from price.db import create_pool
from price.domain import CandleRow, CsvRowError, known_at, parse_candle_csv
from price.handlers import PriceService, sync_newest, tick_for
from price.provider import CryptoCompareProvider, ProviderRefused, ProviderUnavailable
from price.repository import CandleStore
from price.settings import Settings

app = typer.Typer(help="Bitfolio price service: BTC-USD hourly candles.", no_args_is_help=True)
console = Console(stderr=True)
SERVICE_DIR = Path(__file__).resolve().parents[2]
if not (SERVICE_DIR / "alembic.ini").exists():  # installed as a wheel (the Docker image): run from the service folder
    SERVICE_DIR = Path.cwd()
SEED_FILE = SERVICE_DIR / "seed" / "btc-usd-hourly-2024.csv.gz"
BATCH = 20_000


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")  # type: ignore[arg-type]
    return path.open(encoding="utf-8", newline="")  # type: ignore[return-value]


async def import_csv(settings: Settings, path: Path, *, quiet: bool = False) -> tuple[int, int, list[CsvRowError]]:
    """Import a candle CSV: (rows read, rows new, bad rows). Importing the same file twice changes nothing."""
    pool = await create_pool(settings.asyncpg_dsn)
    store = CandleStore(pool)
    errors: list[CsvRowError] = []
    read = inserted = 0
    try:
        with open_text(path) as lines, _progress() as progress:
            task = progress.add_task(f"importing {path.name}", total=None, visible=not quiet)
            batch: list[CandleRow] = []
            for item in parse_candle_csv(lines):
                if isinstance(item, CsvRowError):
                    errors.append(item)
                    continue
                batch.append(item)
                if len(batch) >= BATCH:
                    inserted += (await store.store(known_at(batch, int(time.time())), f"csv:{path.name}",
                                                  tick=tick_for)).inserted
                    read += len(batch)
                    progress.update(task, completed=read)
                    batch = []
            if batch:
                inserted += (await store.store(known_at(batch, int(time.time())), f"csv:{path.name}",
                                                  tick=tick_for)).inserted
                read += len(batch)
                progress.update(task, completed=read, total=read)
    finally:
        await pool.close()
    return read, inserted, errors


def _report_import(read: int, inserted: int, errors: list[CsvRowError]) -> None:
    for error in errors[:50]:
        console.print(f"[red]line {error.line}[/red]: {error.message}")
    if len(errors) > 50:
        console.print(f"… and {len(errors) - 50} more bad rows")
    console.print(f"{read} candles read, {inserted} new, {len(errors)} bad rows")


@app.command()
def serve() -> None:
    """Run the consumers, the operator HTTP API, the outbox relay and the hourly sync."""
    from price.main import serve as serve_forever

    uvloop.run(serve_forever(Settings()))  # its event loop costs about half the CPU of asyncio's under load


@app.command()
def migrate() -> None:
    """Create the database when it is missing and apply the migrations."""
    migrate_database(SERVICE_DIR, Settings().database_url)
    console.print("price database is up to date")


@app.command("import-csv")
def import_csv_command(file: Path = typer.Argument(..., exists=True, dir_okay=False, help=".csv or .csv.gz")) -> None:
    """Import candles from a CSV file (shared Coinbase columns, or the provider's field names)."""
    read, inserted, errors = asyncio.run(import_csv(Settings(), file))
    _report_import(read, inserted, errors)
    if errors:
        raise typer.Exit(1)


@app.command()
def seed() -> None:
    """Import the bundled 2024 candles when the candle table is empty."""
    settings = Settings()

    async def empty() -> bool:
        connection = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            return not await connection.fetchval("SELECT EXISTS (SELECT 1 FROM candles)")
        finally:
            await connection.close()

    if not asyncio.run(empty()):
        console.print("candles are already stored; nothing to seed")
        return
    _report_import(*asyncio.run(import_csv(settings, SEED_FILE)))


def _provider(settings: Settings) -> CryptoCompareProvider:
    return CryptoCompareProvider(settings.provider_base_url, settings.provider_api_key,
                                 attempts=settings.provider_attempts, backoff_seconds=settings.provider_backoff_seconds,
                                 timeout_seconds=settings.provider_timeout_seconds)


@app.command()
def backfill(since: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="first day to fetch, UTC")) -> None:
    """Fetch every hour from SINCE to the last complete hour from the provider."""
    settings = Settings()

    async def run() -> int:
        pool = await create_pool(settings.asyncpg_dsn)
        provider = _provider(settings)
        store = CandleStore(pool)
        start = int(since.replace(tzinfo=UTC).timestamp())
        now = int(datetime.now(UTC).timestamp())
        until = now - now % 3600 - 3600
        inserted = 0
        try:
            with _progress() as progress:
                task = progress.add_task("backfilling", total=(until - start) // 3600 + 1)
                async for page in provider.history(start, until):
                    inserted += (await store.store(page, provider.name, tick=tick_for)).inserted
                    progress.advance(task, len(page))
        finally:
            await provider.close()
            await pool.close()
        return inserted

    try:
        console.print(f"{asyncio.run(run())} new candles")
    except (ProviderUnavailable, ProviderRefused) as error:
        console.print(f"[red]the provider stopped the backfill:[/red] {error}")
        raise typer.Exit(1) from error


@app.command()
def sync() -> None:
    """Fetch the candles newer than the newest stored one."""
    settings = Settings()

    async def run() -> int:
        pool = await create_pool(settings.asyncpg_dsn)
        service = PriceService(CandleStore(pool), _provider(settings))
        try:
            return await sync_newest(service)
        finally:
            await service.provider.close()  # type: ignore[union-attr]
            await pool.close()

    try:
        console.print(f"{asyncio.run(run())} new candles")
    except (ProviderUnavailable, ProviderRefused) as error:
        console.print(f"[red]sync failed:[/red] {error}")
        raise typer.Exit(1) from error


if __name__ == "__main__":
    app()
