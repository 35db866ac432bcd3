"""Each service's database chores, shared so they are written once: create it when missing, run Alembic.

Needs the `db` extra (asyncpg, SQLAlchemy, Alembic); the web dashboard, which has no database, does not.
"""

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


async def keep_session(connection: Any) -> None:
    """asyncpg pool `reset=`: a released connection is not reset with a query (advisory locks, cursors, LISTEN,
    SET), which cost a round trip at every release; our services keep no session state across a release (an open
    transaction is still rolled back by the pool)."""


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database_if_missing(database_url: str) -> None:
    import asyncpg

    parts = urlsplit(asyncpg_dsn(database_url))
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def migrate(service_dir: Path, database_url: str) -> None:
    """Create the database when missing, then `alembic upgrade head` with the service's own migrations."""
    from alembic import command
    from alembic.config import Config

    asyncio.run(create_database_if_missing(database_url))
    config = Config(str(service_dir / "alembic.ini"))
    config.cmd_opts = type("Options", (), {"x": [f"database_url={database_url}"]})()
    command.upgrade(config, "head")


def run_alembic_environment(metadata: Any, default_url: str) -> None:
    """The body of every service's migrations/env.py: async engine, URL from `-x database_url=` or settings."""
    from alembic import context
    from sqlalchemy.ext.asyncio import create_async_engine

    url = context.get_x_argument(as_dictionary=True).get("database_url") or default_url

    def run(connection: Any) -> None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_online() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_online())
