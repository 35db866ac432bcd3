"""The only code that reads and writes users and tokens."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    is_demo: bool
    created_at: datetime


def _user(row: asyncpg.Record | None) -> User | None:
    return None if row is None else User(row["id"], row["email"], row["password_hash"], row["is_demo"],
                                         row["created_at"])


async def add_user(pool: asyncpg.Pool, user_id: str, email: str, password_hash: str, is_demo: bool = False
                   ) -> User | None:
    """None when the email is taken."""
    row = await pool.fetchrow(
        "INSERT INTO users (id, email, password_hash, is_demo) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (email) DO NOTHING RETURNING *", user_id, email, password_hash, is_demo)
    return _user(row)


async def user_by_email(pool: asyncpg.Pool, email: str) -> User | None:
    return _user(await pool.fetchrow("SELECT * FROM users WHERE email = $1", email))


async def user_by_id(pool: asyncpg.Pool, user_id: str) -> User | None:
    return _user(await pool.fetchrow("SELECT * FROM users WHERE id = $1", user_id))


async def set_password_hash(pool: asyncpg.Pool, user_id: str, password_hash: str) -> None:
    await pool.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def add_refresh_token(pool: asyncpg.Pool | asyncpg.Connection, token_hash: str, family_id: str, user_id: str,
                            expires_at: datetime) -> None:
    await pool.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash, family_id, user_id, expires_at)


async def use_refresh_token(connection: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """Lock and return the token row (None if unknown)."""
    return await connection.fetchrow("SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", token_hash)


async def mark_used(connection: asyncpg.Connection, token_hash: str) -> None:
    await connection.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash)


async def revoke_family(pool: asyncpg.Pool | asyncpg.Connection, family_id: str) -> None:
    await pool.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                       family_id)


async def revoke_family_of_user(pool: asyncpg.Pool | asyncpg.Connection, family_id: str, user_id: str) -> None:
    await pool.execute("UPDATE refresh_tokens SET revoked_at = now() "
                       "WHERE family_id = $1 AND user_id = $2 AND revoked_at IS NULL", family_id, user_id)


async def revoke_access(pool: asyncpg.Pool, jti: str, expires_at: datetime) -> None:
    await pool.execute("INSERT INTO revoked_access (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       jti, expires_at)
    await pool.execute("DELETE FROM revoked_access WHERE expires_at < now()")


async def access_revoked(pool: asyncpg.Pool, jti: str) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM revoked_access WHERE jti = $1)", jti))
