"""Alembic environment of the gateway service: async engine, URL from `-x database_url=` or Settings."""

import asyncio

from alembic import context
from gateway.db import metadata
from gateway.settings import Settings
from sqlalchemy.ext.asyncio import create_async_engine

database_url = context.get_x_argument(as_dictionary=True).get("database_url") or Settings().database_url


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
