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

    def is_revoked(self, token_id: str, session_id: str | None) -> bool:
        return self.known.is_revoked(token_id, session_id)

    def apply(self, revoked: AccessRevoked) -> None:
        self.known.revoke(revoked.until, revoked.token_id, revoked.session_id)

    def session_end(self, ended_at: datetime) -> datetime:
        """When the last access token of a session ended at `ended_at` expires anyway."""
        return ended_at + timedelta(seconds=self.access_token_seconds)

    async def revoke(self, user_id: str, *, token_id: str | None = None, session_id: str | None = None,
                     token_expires_at: datetime | None = None) -> None:
        """Apply here at once and tell the other copies (the database already holds the revocation)."""
        until = self.session_end(datetime.now(UTC))
        if token_expires_at is not None and session_id is None:
            until = token_expires_at
        revoked = AccessRevoked(user_id=user_id, token_id=token_id, session_id=session_id, until=until)
        self.apply(revoked)
        if self.announce is not None:
            await self.announce(revoked)

    async def sync(self, pool: asyncpg.Pool) -> None:
        """Read every revocation still in force from the database (the safety net under the announcements)."""
        for token_id, expires_at in await repo.revoked_tokens(pool):
            self.known.revoke(expires_at, token_id=token_id)
        for session_id, ended_at in await repo.revoked_sessions(pool, self.access_token_seconds):
            self.known.revoke(self.session_end(ended_at), session_id=session_id)
        self.known.forget_expired(datetime.now(UTC))
