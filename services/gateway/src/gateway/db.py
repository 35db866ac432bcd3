"""Tables of the gateway: users, refresh-token families, revoked access tokens, idempotency keys."""

import asyncpg
import sqlalchemy as sa
from contracts.database import keep_session
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
)

refresh_tokens = sa.Table(
    "refresh_tokens", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("family_id", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("used_at", TS),
    sa.Column("revoked_at", TS),
    sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
)
"""Opaque refresh tokens, stored as SHA-256 hashes; each use rotates; a reused one revokes its family."""

revoked_access = sa.Table(
    "revoked_access", metadata,
    sa.Column("jti", sa.Text, primary_key=True),
    sa.Column("expires_at", TS, nullable=False),
)

revoked_sessions = sa.Table(
    "revoked_sessions", metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("until", TS, nullable=False),
)
"""Sessions (refresh-token families) whose access tokens are refused: a refresh token was used twice."""
"""Access tokens ended by logout, kept until they would have expired anyway."""

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("command_seed", sa.Text, nullable=False),
    sa.Column("locked_until", TS),
    sa.Column("response_status", sa.Integer),
    sa.Column("response_headers", postgresql.JSONB),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
)
"""A write sent with an Idempotency-Key: claimed while it runs (locked_until), then holding its final answer.
command_seed names the bus commands it sends, so a retry re-sends the same message ids and the portfolio
service's inbox applies each at most once."""


async def create_pool(dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=keep_session)
