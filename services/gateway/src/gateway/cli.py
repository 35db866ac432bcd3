"""Command line of the gateway: serve, migrate, seed-demo."""

import asyncio
import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import asyncpg
import typer
from contracts.database import migrate as migrate_database
from pydantic import ValidationError
from rich.console import Console

from gateway.settings import Settings

app = typer.Typer(help="Bitfolio gateway: accounts and the public HTTP API.", no_args_is_help=True)
console = Console(stderr=True)
SERVICE_DIR = Path(__file__).resolve().parents[2]
if not (SERVICE_DIR / "alembic.ini").exists():  # installed as a wheel (the Docker image): run from the service folder
    SERVICE_DIR = Path.cwd()

DEMO_TRADES = [  # real 2024 times; prices come from the price service (the open of each hour's candle)
    ("buy", "0.25", "2024-01-02T09:30:00Z", "4.90", "First stack of the year"),
    ("buy", "0.10", "2024-01-23T14:10:00Z", "2.10", "Dip after the ETF launch"),
    ("buy", "0.15", "2024-02-20T08:45:00Z", "3.00", None),
    ("sell", "0.12", "2024-03-14T16:20:00Z", "4.50", "Took profit near the high"),
    ("buy", "0.08", "2024-04-19T02:05:00Z", "1.60", "Halving day"),
    ("buy", "0.20", "2024-05-01T12:00:00Z", "3.80", None),
    ("sell", "0.05", "2024-06-07T19:40:00Z", "1.75", None),
    ("buy", "0.12", "2024-07-05T07:15:00Z", "2.40", "Bought the Mt. Gox scare"),
    ("buy", "0.10", "2024-08-05T03:30:00Z", "2.00", "August crash"),
    ("sell", "0.06", "2024-08-23T15:00:00Z", "2.20", None),
]
DEMO_EARLIER_BUYS = [  # before the bundled candles, so at typed (real) prices: the tax report gets long-term lots
    ("0.05", "2023-01-16T15:00:00Z", "1.00", "21000", "Bought near the 2023 low"),
    ("0.04", "2023-10-10T10:00:00Z", "1.00", "27500", None),
]
DEMO_TRANSFER = ("0.2", "2024-09-02T10:00:00Z", "0.0001", "Moved to the hardware wallet")
"""Amount sent, time, network fee in BTC and note of the demo's move into its cold-storage portfolio."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        console.print(f"[red]The gateway's settings are not safe to run with:[/red] {error.errors()[0]['msg']}")
        raise typer.Exit(2) from error


@app.command()
def serve() -> None:
    """Run the public HTTP API."""
    from gateway.main import serve as serve_forever

    serve_forever(_settings())


@app.command()
def migrate() -> None:
    """Create the database when it is missing and apply the migrations."""
    migrate_database(SERVICE_DIR, _settings().database_url)
    console.print("gateway database is up to date")


async def seed_demo_account(settings: Settings) -> str:
    """Create the read-only demo user and its portfolio of real 2024 trades, once."""
    from contracts.portfolios import CreatePortfolio, ListPortfolios, RecordTransaction, RecordTransfer
    from contracts.rpc import RpcClient

    from gateway import repository as repo
    from gateway.security import hash_password

    pool = await asyncpg.create_pool(settings.asyncpg_dsn, min_size=1, max_size=2)
    client = RpcClient(settings.rabbit_url, timeout=30)
    await client.connect()
    try:
        user = await repo.user_by_email(pool, settings.demo_email) or await repo.add_user(
            pool, uuid4().hex, settings.demo_email, hash_password(secrets.token_urlsafe(24)), is_demo=True)
        assert user is not None
        existing = await client.call(ListPortfolios(owner_id=user.id))
        if existing.ok and existing.result["total"] > 0:
            return "the demo account already has its portfolio"
        created = await client.call(CreatePortfolio(owner_id=user.id, name="Demo: 2024 stack",
                                                    goal_usd=Decimal("100000")))
        portfolio_id = created.result["portfolio_id"]
        trades = [("buy", amount, at, fee, note, price) for amount, at, fee, price, note in DEMO_EARLIER_BUYS]
        for side, amount, at, fee, note, price in [*trades, *((*trade, None) for trade in DEMO_TRADES)]:
            reply = await client.call(RecordTransaction(
                owner_id=user.id, portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount),
                at=datetime.fromisoformat(at), fee_usd=Decimal(fee), note=note,
                price_usd=Decimal(price) if price else None))
            if not reply.ok:
                raise RuntimeError(f"demo trade {at} was refused: {reply.error.message}")  # type: ignore[union-attr]
        vault = await client.call(CreatePortfolio(owner_id=user.id, name="Demo: cold storage",
                                                  cost_basis_method="fifo"))
        amount, at, fee, note = DEMO_TRANSFER
        moved = await client.call(RecordTransfer(
            owner_id=user.id, portfolio_id=portfolio_id, to_portfolio_id=vault.result["portfolio_id"],
            amount_btc=Decimal(amount), at=datetime.fromisoformat(at), fee_btc=Decimal(fee), note=note))
        if not moved.ok:
            raise RuntimeError(f"the demo transfer was refused: {moved.error.message}")  # type: ignore[union-attr]
        return (f"seeded the demo account with {len(DEMO_EARLIER_BUYS) + len(DEMO_TRADES)} trades and a transfer "
                "to cold storage")
    finally:
        await client.close()
        await pool.close()


@app.command("seed-demo")
def seed_demo() -> None:
    """Create the demo account (read-only; log in with POST /v1/auth/demo) with real 2024 trades."""
    console.print(asyncio.run(seed_demo_account(_settings())))


if __name__ == "__main__":
    app()
