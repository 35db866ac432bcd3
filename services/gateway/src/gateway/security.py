"""Password hashing (argon2id) and access tokens (JWT, HS256 pinned, every registered claim required)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# A hash of a random password, verified when the email is unknown, so both paths take the same time.
DECOY_HASH = HASHER.hash(secrets.token_urlsafe(16))


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


def issue_access_token(settings: Settings, user_id: str, now: datetime | None = None) -> tuple[str, AccessClaims]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=settings.access_token_seconds)
    jti = uuid4().hex
    token = jwt.encode({"sub": user_id, "iat": issued, "exp": expires, "iss": settings.jwt_issuer,
                        "aud": settings.jwt_audience, "jti": jti}, settings.jwt_secret, algorithm=ALGORITHM)
    return token, AccessClaims(user_id, jti, expires)


def read_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM], audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError as error:
        raise InvalidToken("The access token has expired; refresh it or log in again.") from error
    except jwt.PyJWTError as error:
        raise InvalidToken("The access token is not valid.") from error
    return AccessClaims(str(claims["sub"]), str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC))
