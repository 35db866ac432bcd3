"""Sessions ended before their tokens expire, told to every gateway copy."""

from typing import ClassVar

from pydantic import Field

from contracts import names
from contracts.envelope import Message
from contracts.types import UtcDatetime


class AccessRevoked(Message):
    """Access tokens ended early (a logout, a reused refresh token): every gateway copy refuses them from now on.

    It names one token (`token_id`, the JWT's jti), a whole session (`session_id`, every access token issued in
    it), or both; `until` is when the last token it names expires anyway."""

    routing_key: ClassVar[str] = names.ACCESS_REVOKED

    user_id: str = Field(min_length=1, max_length=100)
    token_id: str | None = Field(default=None, max_length=100)
    session_id: str | None = Field(default=None, max_length=100)
    until: UtcDatetime
