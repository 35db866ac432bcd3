"""Tables of the price service (the Alembic migrations create them) and its connection pool."""

import asyncpg
import sqlalchemy as sa
from contracts.database import keep_session

metadata = sa.MetaData()

candles = sa.Table(
    "candles",
    metadata,
    sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("open", sa.Numeric, nullable=False),
    sa.Column("high", sa.Numeric, nullable=False),
    sa.Column("low", sa.Numeric, nullable=False),
    sa.Column("close", sa.Numeric, nullable=False),
    sa.Column("volume", sa.Numeric, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("hour % 3600 = 0", name="candle_hour_is_whole"),
)
"""Hourly candles; a provisional one (its hour still trading) is replaced when the hour is fetched again."""

answered_requests = sa.Table(
    "answered_requests",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
)
"""Inbox of price.requested message ids with the answer given, so a duplicate gets the same answer."""

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
)
"""Events written with the change that caused them (price.ticked); the relay publishes and deletes them."""


async def create_pool(dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=8, reset=keep_session)
