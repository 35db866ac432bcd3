"""Idempotency-Key on every write: applied once, the first answer replayed, another body with the key refused.

An ASGI middleware in front of the routes. It claims (user, key) in the gateway's database before the route runs,
so concurrent duplicates never both run; it stores the final answer (status, headers, body) and replays it for
24 hours. A 503 is not final: the key is released and a retry runs again, re-sending its bus commands under the
same message ids (see `bus.StableCommandIds`), so a command that did get applied is answered, not applied twice.
"""

import hashlib
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import repository as repo
from gateway import security
from gateway.bus import StableCommandIds, stable_command_ids
from gateway.errors import envelope

log = structlog.get_logger()
WRITES = frozenset({"POST", "PATCH", "DELETE"})
HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
MAX_BODY_BYTES = 6 * 1024 * 1024  # above the largest import a route accepts
UNSCOPED_PREFIX = "/v1/auth/"
"""Account routes: no user to scope a key to (or, for logout, nothing worth replaying), and tokens must never be
stored for replay."""
NOT_FINAL = frozenset({401, 429})
"""Answers about the caller's token or pace, not about the request: a retry deserves a fresh look."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    """What makes two requests 'the same': method, path, query and body.

    A multipart body (a CSV upload) is read without its boundary, which HTTP clients pick at random per send."""
    content_type = header(scope, b"content-type") or ""
    if content_type.startswith("multipart/") and "boundary=" in content_type:
        boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip().strip('"')
        if boundary:
            body = body.replace(boundary.encode("latin-1"), b"")
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def _send_json(send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


def _error(code: str, message: str) -> dict[str, Any]:
    return envelope(code, message)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, gateway: Any) -> None:
        self.app, self.gateway = app, gateway

    def _user_id(self, scope: Scope) -> str | None:
        """The token's user, or None: the route itself then answers 401."""
        authorization = header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            return self.gateway.tokens.read(token.strip()).user_id
        except security.InvalidToken:
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES or scope["path"].startswith(UNSCOPED_PREFIX):
            return await self.app(scope, receive, send)
        key = header(scope, HEADER)
        if key is None:
            return await self.app(scope, receive, send)
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            return await _send_json(send, 422, _error(
                "validation", f"Idempotency-Key must have 1 to {MAX_KEY_LENGTH} characters."), [])
        user_id = self._user_id(scope)
        if user_id is None:
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        if body is None:
            return await _send_json(send, 413, _error("too_large", "The request body is too large."), [])
        settings, pool = self.gateway.settings, self.gateway.accounts.pool
        claim = await repo.claim_idempotency_key(pool, user_id, key, _fingerprint(scope, body),
                                                 settings.idempotency_lease_seconds, settings.idempotency_hours)
        if isinstance(claim, repo.KeyReused):
            return await _send_json(send, 409, _error(
                "conflict", "This Idempotency-Key was already used for a different request; use a new key."), [])
        if isinstance(claim, repo.KeyBusy):
            return await _send_json(send, 409, _error(
                "conflict", "A request with this Idempotency-Key is still being handled; retry in a moment."),
                [(b"retry-after", b"1")])
        if isinstance(claim, repo.Answered):
            headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in claim.headers]
            await send({"type": "http.response.start", "status": claim.status,
                        "headers": [*headers, (b"idempotent-replayed", b"true")]})
            return await send({"type": "http.response.body", "body": claim.body})
        await self._run_once(scope, replaying(body, receive), send, user_id, key, claim)

    async def _run_once(self, scope: Scope, receive: Receive, send: Send, user_id: str, key: str,
                        claim: repo.Claimed) -> None:
        pool = self.gateway.accounts.pool
        status, headers, chunks = 0, [], []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        token = stable_command_ids.set(StableCommandIds(claim.command_seed))
        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await repo.release_idempotency_key(pool, user_id, key)
            raise
        finally:
            stable_command_ids.reset(token)
        if status and status < 500 and status not in NOT_FINAL:
            await repo.answer_idempotency_key(pool, user_id, key, status, headers, b"".join(chunks))
        else:
            log.info("idempotency_key_released", status=status)
            await repo.release_idempotency_key(pool, user_id, key)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (it is part of the key's fingerprint), or None when it is over MAX_BODY_BYTES."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the route, then defers to the real one (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
