"""Which access tokens were ended early, known to every gateway copy without a database query per request.

A copy that ends a token records it in the database and announces `access.revoked` on the bus; every copy applies
the announcement at once, and reads the database's list again every `revocation_sync_seconds` (and after a broker
reconnect), so a lost announcement delays a revocation by at most that long."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from contracts.sessions import AccessRevoked

from gateway import repository as repo
from gateway.domain.revocations import Revocations


class TokenRevocations:
    def __init__(self, access_token_seconds: int) -> None:
        self.access_token_seconds = access_token_seconds
        self.known = Revocations()
        self.announce: Callable[[AccessRevoked], Awaitable[None]] | None = None
        """Publishes an announcement to every copy (set once the event feed runs)."""

    def refusal(self, token_id: str, session_id: str | None) -> str | None:
        """Why the token may not be used any more, or None when it may."""
        if self.known.token_revoked(token_id):
            return "This access token was ended by a logout; log in again."
        if self.known.session_revoked(session_id):
            return "This session was ended because its refresh token was used twice; log in again."
        return None

    def apply(self, revoked: AccessRevoked) -> None:
        self.known.revoke(revoked.until, revoked.token_id, revoked.session_id)

    def session_end(self, ended_at: datetime) -> datetime:
        """When the last access token of a session ended at `ended_at` expires anyway."""
        return ended_at + timedelta(seconds=self.access_token_seconds)

    async def end_token(self, pool: asyncpg.Pool, user_id: str, token_id: str, expires_at: datetime) -> None:
        """A logout: the access token is refused from now on, here at once and by every copy."""
        await repo.revoke_access(pool, token_id, expires_at)
        await self._announce(AccessRevoked(user_id=user_id, token_id=token_id, until=expires_at))

    async def end_session(self, pool: asyncpg.Pool, user_id: str, session_id: str) -> None:
        """A leaked session: every access token issued in it is refused from now on."""
        until = self.session_end(datetime.now(UTC))
        await repo.revoke_session(pool, session_id, until)
        await self._announce(AccessRevoked(user_id=user_id, session_id=session_id, until=until))

    async def _announce(self, revoked: AccessRevoked) -> None:
        self.apply(revoked)
        if self.announce is not None:
            await self.announce(revoked)

    async def sync(self, pool: asyncpg.Pool) -> None:
        """Read every revocation still in force from the database (the safety net under the announcements)."""
        for token_id, expires_at in await repo.revoked_tokens(pool):
            self.known.revoke(expires_at, token_id=token_id)
        for session_id, until in await repo.revoked_sessions(pool):
            self.known.revoke(until, session_id=session_id)
        self.known.forget_expired(datetime.now(UTC))
