"""Account use cases: register, log in, rotate refresh tokens, log out, demo login."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from gateway import repository as repo
from gateway import security
from gateway.domain.accounts import AccountRuleBroken, check_password, normalize_email
from gateway.domain.rate_limits import SlidingWindow
from gateway.errors import ApiError
from gateway.schemas import TokenPair
from gateway.settings import Settings


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


@dataclass
class Accounts:
    settings: Settings
    pool: asyncpg.Pool
    failed_by_account: SlidingWindow
    failed_by_ip: SlidingWindow

    @classmethod
    def create(cls, settings: Settings, pool: asyncpg.Pool) -> "Accounts":
        window = settings.failed_login_window_seconds
        return cls(settings, pool, SlidingWindow(settings.failed_logins_per_account, window),
                   SlidingWindow(settings.failed_logins_per_ip, window))

    async def register(self, email: str, password: str) -> repo.User:
        try:
            normal = normalize_email(email)
            check_password(password, normal)
        except AccountRuleBroken as error:
            raise ApiError(422, "validation", error.message, [{"field": error.field, "message": error.message}]
                           ) from error
        user = await repo.add_user(self.pool, uuid4().hex, normal, security.hash_password(password))
        if user is None:
            raise ApiError(409, "conflict", "An account with that email already exists; log in instead.")
        return user

    async def issue_tokens(self, user_id: str, family_id: str | None = None,
                           connection: asyncpg.Connection | None = None) -> TokenPair:
        access, _ = security.issue_access_token(self.settings, user_id)
        refresh, refresh_hash = security.new_refresh_token()
        expires = datetime.now(UTC) + timedelta(days=self.settings.refresh_token_days)
        await repo.add_refresh_token(connection or self.pool, refresh_hash, family_id or uuid4().hex, user_id,
                                     expires)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=self.settings.access_token_seconds)

    def _refuse_if_limited(self, account: str, ip: str) -> None:
        now = time.monotonic()
        wait = max(self.failed_by_account.retry_after(account, now), self.failed_by_ip.retry_after(ip, now))
        if wait:
            raise ApiError(429, "rate_limited", f"Too many failed logins; try again in {wait} seconds.",
                           headers={"Retry-After": str(wait)})

    async def login(self, email: str, password: str, ip: str) -> TokenPair:
        try:
            normal = normalize_email(email)
        except AccountRuleBroken:
            normal = None  # no account can have this email; still costs a hash and counts as a failure
        self._refuse_if_limited(normal or email[:254], ip)
        user = await repo.user_by_email(self.pool, normal) if normal else None
        matches, new_hash = security.verify_password(user.password_hash if user else security.DECOY_HASH, password)
        if user is None or not matches or user.is_demo:
            now = time.monotonic()
            self.failed_by_account.record(normal or email[:254], now)
            self.failed_by_ip.record(ip, now)
            raise unauthorized("The email or password is wrong.")
        self.failed_by_account.clear(user.email)
        if new_hash:
            await repo.set_password_hash(self.pool, user.id, new_hash)
        return await self.issue_tokens(user.id)

    async def refresh(self, token: str) -> TokenPair:
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
            raise unauthorized("This refresh token was already used; every session it started is now ended.")

    async def logout(self, claims: security.AccessClaims, refresh_token: str | None) -> None:
        await repo.revoke_access(self.pool, claims.jti, claims.expires_at)
        if refresh_token:
            row = await self.pool.fetchrow("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                                           security.hash_refresh_token(refresh_token))
            if row is not None and row["user_id"] == claims.user_id:
                await repo.revoke_family(self.pool, row["family_id"])

    async def demo(self) -> TokenPair:
        user = await repo.user_by_email(self.pool, self.settings.demo_email)
        if user is None:
            raise ApiError(404, "not_found", "The demo account has not been set up on this server "
                                             "(run `gateway seed-demo`).")
        return await self.issue_tokens(user.id)
