"""Command line of the portfolio service: serve, migrate, replay."""

import asyncio
import os
from pathlib import Path
from typing import Optional

import typer
import uvloop
from contracts.database import migrate as migrate_database
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from portfolio.db import create_pool
from portfolio.market_data import PriceSource
from portfolio.service import PortfolioService
from portfolio.settings import Settings

app = typer.Typer(help="Bitfolio portfolio service: event-sourced portfolios and their metrics.",
                  no_args_is_help=True)
console = Console(stderr=True)
PARALLEL_FROM_EVENTS = 50_000
"""Below this many events a replay in one process beats starting workers."""
SERVICE_DIR = Path(__file__).resolve().parents[2]
if not (SERVICE_DIR / "alembic.ini").exists():  # installed as a wheel (the Docker image): run from the service folder
    SERVICE_DIR = Path.cwd()


@app.command()
def serve() -> None:
    """Run the command and event consumers, the outbox relay and the ops HTTP app."""
    from portfolio.main import serve as serve_forever

    uvloop.run(serve_forever(Settings()))  # its event loop costs about half the CPU of asyncio's under load


@app.command()
def migrate() -> None:
    """Create the database when it is missing and apply the migrations."""
    migrate_database(SERVICE_DIR, Settings().database_url)
    console.print("portfolio database is up to date")


@app.command()
def replay(
    portfolio: Optional[str] = typer.Option(None, help="rebuild only this portfolio id"),  # noqa: UP045
    check: bool = typer.Option(False, "--check", help="rebuild beside the live projections and report differences"),
    workers: Optional[int] = typer.Option(  # noqa: UP045
        None, min=1, help="processes that rebuild in parallel (default: one per core for a log of 50,000 events "
                          "or more, else 1)"),
) -> None:
    """Drop and rebuild the projections from the event log (or, with --check, compare without writing)."""
    from portfolio import replay as replaying

    async def run() -> list[str]:
        pool = await create_pool(Settings().asyncpg_dsn)
        service = PortfolioService(pool, PriceSource(None))
        try:
            total = await replaying.event_count(pool)
            processes = workers or ((os.cpu_count() or 1) if total >= PARALLEL_FROM_EVENTS else 1)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                task = progress.add_task("replaying events", total=total)
                if processes > 1 and not portfolio and not check:
                    count = await replaying.replay_in_parallel(pool, Settings().asyncpg_dsn, processes,
                                                               lambda n: progress.advance(task, n))
                    console.print(f"rebuilt {count} portfolios from {total} events with {processes} processes")
                    return []
                with replaying.without_cycle_collection():
                    rebuilt = await replaying.rebuild(service, portfolio, lambda n: progress.advance(task, n))
            if check:
                return await replaying.differences(pool, rebuilt, portfolio)
            await replaying.write(pool, rebuilt, portfolio)
            console.print(f"rebuilt {len(rebuilt)} portfolios from {total} events")
            return []
        finally:
            await pool.close()

    found = asyncio.run(run())
    for line in found:
        console.print(line)
    if check:
        console.print(f"{len(found)} differences" if found else "the live projections equal the rebuild")
    if found:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
