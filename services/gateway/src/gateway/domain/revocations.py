"""Access tokens ended before they expire, held in memory so that checking a token needs no database query."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Revocations:
    """Ended tokens by id (a logout) and ended sessions (every access token issued in them: a refresh token was
    used twice), each kept until the last token it names would have expired anyway."""

    tokens: dict[str, datetime] = field(default_factory=dict)
    sessions: dict[str, datetime] = field(default_factory=dict)

    def revoke(self, until: datetime, token_id: str | None = None, session_id: str | None = None) -> None:
        if token_id:
            self.tokens[token_id] = max(until, self.tokens.get(token_id, until))
        if session_id:
            self.sessions[session_id] = max(until, self.sessions.get(session_id, until))

    def token_revoked(self, token_id: str) -> bool:
        return token_id in self.tokens

    def session_revoked(self, session_id: str | None) -> bool:
        return session_id is not None and session_id in self.sessions

    def forget_expired(self, now: datetime) -> None:
        self.tokens = {key: until for key, until in self.tokens.items() if until > now}
        self.sessions = {key: until for key, until in self.sessions.items() if until > now}
