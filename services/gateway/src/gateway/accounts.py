"""Account use cases: register, log in, rotate refresh tokens, log out, demo login."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import anyio
import asyncpg

from gateway import repository as repo
from gateway import security
from gateway.domain.accounts import AccountRuleBroken, check_password, normalize_email
from gateway.domain.rate_limits import SlidingWindow
from gateway.errors import ApiError
from gateway.revocations import TokenRevocations
from gateway.schemas import TokenPair
from gateway.settings import Settings

KNOWN_USERS = 100_000


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def refuse_if_limited(wait: int, what: str) -> None:
    if wait:
        raise ApiError(429, "rate_limited", f"{what}; try again in {wait} seconds.",
                       headers={"Retry-After": str(wait)})


@dataclass
class Accounts:
    settings: Settings
    pool: asyncpg.Pool
    failed_by_account_and_address: SlidingWindow
    """Keyed by (account, address): a stranger's wrong guesses lock out only the stranger, never the owner."""
    failed_by_address: SlidingWindow
    registrations_by_address: SlidingWindow
    token_requests_by_address: SlidingWindow
    hashing: anyio.CapacityLimiter
    revocations: TokenRevocations
    demo_by_user: dict[str, bool] = field(default_factory=dict)
    """User id → is_demo, kept once read: a user's row is never deleted and its is_demo never changes, so a write
    checks its caller without a query (bounded like the verified tokens)."""

    @classmethod
    def create(cls, settings: Settings, pool: asyncpg.Pool) -> "Accounts":
        window = settings.failed_login_window_seconds
        return cls(settings, pool, SlidingWindow(settings.failed_logins_per_account_and_address, window),
                   SlidingWindow(settings.failed_logins_per_ip, window),
                   SlidingWindow(settings.registrations_per_ip_per_hour, 3600),
                   SlidingWindow(settings.token_requests_per_ip_per_minute, 60),
                   anyio.CapacityLimiter(settings.password_hashing_threads),
                   TokenRevocations(settings.access_token_seconds))

    async def is_demo(self, user_id: str) -> bool | None:
        """Whether the user is the read-only demo account, or None when there is no such user."""
        known = self.demo_by_user.get(user_id)
        if known is not None:
            return known
        user = await repo.user_by_id(self.pool, user_id)
        if user is None:
            return None
        if len(self.demo_by_user) >= KNOWN_USERS:
            del self.demo_by_user[next(iter(self.demo_by_user))]  # the oldest read
        self.demo_by_user[user_id] = user.is_demo
        return user.is_demo

    def _spend(self, window: SlidingWindow, address: str, what: str) -> None:
        """Count one request from `address` against `window`, or refuse it with 429 when the window is full."""
        now = time.monotonic()
        refuse_if_limited(window.retry_after(address, now), what)
        window.record(address, now)

    async def register(self, email: str, password: str, ip: str) -> repo.User:
        self._spend(self.registrations_by_address, ip, "Too many new accounts from your address")
        try:
            normal = normalize_email(email)
            check_password(password, normal)
        except AccountRuleBroken as error:
            raise ApiError(422, "validation", error.message, [{"field": error.field, "message": error.message}]
                           ) from error
        password_hash = await security.hash_password_off_loop(self.hashing, password)
        user = await repo.add_user(self.pool, uuid4().hex, normal, password_hash)
        if user is None:
            raise ApiError(409, "conflict", "An account with that email already exists; log in instead.")
        return user

    async def issue_tokens(self, user_id: str, family_id: str | None = None,
                           connection: asyncpg.Connection | None = None) -> TokenPair:
        family_id = family_id or uuid4().hex
        access, _ = security.issue_access_token(self.settings, user_id, family_id)
        refresh, refresh_hash = security.new_refresh_token()
        expires = datetime.now(UTC) + timedelta(days=self.settings.refresh_token_days)
        await repo.add_refresh_token(connection or self.pool, refresh_hash, family_id, user_id, expires)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=self.settings.access_token_seconds)

    async def login(self, email: str, password: str, ip: str) -> TokenPair:
        try:
            normal = normalize_email(email)
        except AccountRuleBroken:
            normal = None  # no account can have this email; still costs a hash and counts as a failure
        account_at_address = f"{normal or email[:254]}\n{ip}"
        now = time.monotonic()
        refuse_if_limited(max(self.failed_by_account_and_address.retry_after(account_at_address, now),
                              self.failed_by_address.retry_after(ip, now)), "Too many failed logins")
        user = await repo.user_by_email(self.pool, normal) if normal else None
        matches, new_hash = await security.verify_password_off_loop(
            self.hashing, user.password_hash if user else security.DECOY_HASH, password)
        if user is None or not matches or user.is_demo:
            now = time.monotonic()
            self.failed_by_account_and_address.record(account_at_address, now)
            self.failed_by_address.record(ip, now)
            raise unauthorized("The email or password is wrong.")
        self.failed_by_account_and_address.clear(account_at_address)
        if new_hash:
            await repo.set_password_hash(self.pool, user.id, new_hash)
        return await self.issue_tokens(user.id)

    async def refresh(self, token: str, ip: str) -> TokenPair:
        self._spend(self.token_requests_by_address, ip, "Too many token requests from your address")
        token_hash = security.hash_refresh_token(token)
        async with self.pool.acquire() as connection:
            async with connection.transaction():
                row = await repo.use_refresh_token(connection, token_hash)
                if row is None or row["revoked_at"] is not None or row["expires_at"] < datetime.now(UTC):
                    raise unauthorized("The refresh token is not valid; log in again.")
                reused = row["used_at"] is not None
                if not reused:
                    await repo.mark_used(connection, token_hash)
                    return await self.issue_tokens(row["user_id"], row["family_id"], connection)
            # A used token presented again means it leaked: end every session of its family.
            await repo.revoke_family(self.pool, row["family_id"])
            await self.revocations.end_session(self.pool, row["user_id"], row["family_id"])
            raise unauthorized("This refresh token was already used; every session it started is now ended.")

    async def logout(self, claims: security.AccessClaims, refresh_token: str | None) -> None:
        """End the access token and its whole session: the refresh family it was issued with, and any named."""
        await self.revocations.end_token(self.pool, claims.user_id, claims.jti, claims.expires_at)
        if claims.session_id:
            await repo.revoke_family_of_user(self.pool, claims.session_id, claims.user_id)
        if refresh_token:
            row = await self.pool.fetchrow("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                                           security.hash_refresh_token(refresh_token))
            if row is not None and row["user_id"] == claims.user_id:
                await repo.revoke_family(self.pool, row["family_id"])

    async def demo(self, ip: str) -> TokenPair:
        self._spend(self.token_requests_by_address, ip, "Too many token requests from your address")
        user = await repo.user_by_email(self.pool, self.settings.demo_email)
        if user is None:
            raise ApiError(404, "not_found", "The demo account has not been set up on this server "
                                             "(run `gateway seed-demo`).")
        return await self.issue_tokens(user.id)
