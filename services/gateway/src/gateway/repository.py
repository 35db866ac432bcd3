"""The only code that reads and writes users, tokens and idempotency keys."""

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson


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


async def revoked_tokens(pool: asyncpg.Pool) -> list[tuple[str, datetime]]:
    """(jti, expiry) of every access token ended by a logout that has not expired yet."""
    rows = await pool.fetch("SELECT jti, expires_at FROM revoked_access WHERE expires_at > now()")
    return [(row["jti"], row["expires_at"]) for row in rows]


async def revoke_session(pool: asyncpg.Pool, session_id: str, until: datetime) -> None:
    await pool.execute("INSERT INTO revoked_sessions (session_id, until) VALUES ($1, $2) "
                       "ON CONFLICT (session_id) DO UPDATE SET until = greatest(revoked_sessions.until, $2)",
                       session_id, until)
    await pool.execute("DELETE FROM revoked_sessions WHERE until < now()")


async def revoked_sessions(pool: asyncpg.Pool) -> list[tuple[str, datetime]]:
    """(session, until) of every session whose access tokens are still refused."""
    rows = await pool.fetch("SELECT session_id, until FROM revoked_sessions WHERE until > now()")
    return [(row["session_id"], row["until"]) for row in rows]


# ------------------------------------------------------------------ idempotency keys


@dataclass(frozen=True)
class Claimed:
    """This request holds the key now; its bus commands are named from `command_seed`."""

    command_seed: str


@dataclass(frozen=True)
class Answered:
    """The key's request has its final answer, to be replayed as it was."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class KeyReused:
    """The key was used for another request (another method, path or body)."""


@dataclass(frozen=True)
class KeyBusy:
    """Another request with this key is still running."""


async def claim_idempotency_key(pool: asyncpg.Pool, user_id: str, key: str, fingerprint: str, lease_seconds: float,
                                keep_hours: int) -> Claimed | Answered | KeyReused | KeyBusy:
    """Take the key for this request, or say why not; a key is forgotten `keep_hours` after its first use."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at < now() - make_interval(hours => $2)",
            user_id, keep_hours)
        # A concurrent duplicate blocks on this insert until the first commits, then finds the row taken.
        seed = await connection.fetchval(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, command_seed, locked_until) "
            "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) ON CONFLICT DO NOTHING RETURNING command_seed",
            user_id, key, fingerprint, secrets.token_hex(16), lease_seconds)
        if seed is not None:
            return Claimed(seed)
        row = await connection.fetchrow(
            "SELECT fingerprint, command_seed, response_status, response_headers, response_body, "
            "locked_until > now() AS locked FROM idempotency_keys WHERE user_id = $1 AND key = $2 FOR UPDATE",
            user_id, key)
        if row is None:  # forgotten between the two statements (it had just expired): the caller may retry
            return KeyBusy()
        if row["fingerprint"] != fingerprint:
            return KeyReused()
        if row["response_status"] is not None:
            headers = [(name, value) for name, value in orjson.loads(row["response_headers"])]
            return Answered(row["response_status"], headers, bytes(row["response_body"]))
        if row["locked"]:
            return KeyBusy()
        # Released by an attempt without a final answer (a 503), or left by a gateway that died: take it over.
        await connection.execute(
            "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $3) "
            "WHERE user_id = $1 AND key = $2", user_id, key, lease_seconds)
        return Claimed(row["command_seed"])


async def answer_idempotency_key(pool: asyncpg.Pool, user_id: str, key: str, status: int,
                                 headers: list[tuple[str, str]], body: bytes) -> None:
    await pool.execute(
        "UPDATE idempotency_keys SET response_status = $3, response_headers = $4::jsonb, response_body = $5, "
        "locked_until = NULL WHERE user_id = $1 AND key = $2",
        user_id, key, status, orjson.dumps(headers).decode(), body)


async def release_idempotency_key(pool: asyncpg.Pool, user_id: str, key: str) -> None:
    """No final answer (the service was unavailable): a retry with the key runs it again, with the same seed."""
    await pool.execute("UPDATE idempotency_keys SET locked_until = NULL WHERE user_id = $1 AND key = $2",
                       user_id, key)
