"""Password hashing (argon2id) and access tokens (JWT, HS256 pinned, every registered claim required)."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import anyio
import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# A hash of a random password, verified when the email is unknown, so both paths take the same time.
DECOY_HASH = HASHER.hash(secrets.token_urlsafe(16))


EXPIRED = "The access token has expired; refresh it or log in again."


class InvalidToken(Exception):
    """The access token is missing, malformed, forged, expired or revoked."""


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one used older parameters)."""
    try:
        HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, HASHER.hash(password) if HASHER.check_needs_rehash(password_hash) else None


async def hash_password_off_loop(limiter: anyio.CapacityLimiter, password: str) -> str:
    """hash_password in a worker thread: argon2 takes ~20 ms of CPU, which would stall every other request."""
    return await anyio.to_thread.run_sync(hash_password, password, limiter=limiter)


async def verify_password_off_loop(limiter: anyio.CapacityLimiter, password_hash: str, password: str
                                   ) -> tuple[bool, str | None]:
    """verify_password in a worker thread; the limiter bounds how many run at once."""
    return await anyio.to_thread.run_sync(verify_password, password_hash, password, limiter=limiter)


def new_refresh_token() -> tuple[str, str]:
    """(the opaque token for the client, its SHA-256 hash for storage)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    jti: str
    expires_at: datetime
    session_id: str | None = None
    """The refresh-token family this access token belongs to, so that a logout can end the whole session."""


def issue_access_token(settings: Settings, user_id: str, session_id: str, now: datetime | None = None
                       ) -> tuple[str, AccessClaims]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=settings.access_token_seconds)
    jti = uuid4().hex
    token = jwt.encode({"sub": user_id, "iat": issued, "exp": expires, "iss": settings.jwt_issuer,
                        "aud": settings.jwt_audience, "jti": jti, "sid": session_id}, settings.jwt_secret,
                       algorithm=ALGORITHM)
    return token, AccessClaims(user_id, jti, expires, session_id)


def read_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM], audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError as error:
        raise InvalidToken(EXPIRED) from error
    except jwt.PyJWTError as error:
        raise InvalidToken("The access token is not valid.") from error
    session = claims.get("sid")  # absent only from tokens issued before sessions were named
    return AccessClaims(str(claims["sub"]), str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC),
                        str(session) if session is not None else None)


class VerifiedTokens:
    """Access tokens already verified, so that a token sent again costs a lookup instead of an HMAC and a JSON
    parse. Only tokens that verified are kept (the whole signed string is the key), and expiry is checked on
    every use; revocation is checked by the caller."""

    def __init__(self, settings: Settings, capacity: int = 10_000) -> None:
        self.settings, self.capacity = settings, capacity
        self.known: dict[str, tuple[AccessClaims, float]] = {}

    def read(self, token: str) -> AccessClaims:
        known = self.known.get(token)
        if known is None:
            claims = read_access_token(self.settings, token)
            if len(self.known) >= self.capacity:
                del self.known[next(iter(self.known))]  # the oldest verified
            self.known[token] = claims, claims.expires_at.timestamp()
            return claims
        claims, expires = known
        if expires <= time.time():
            del self.known[token]
            raise InvalidToken(EXPIRED)
        return claims
