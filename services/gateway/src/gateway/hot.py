"""The hottest write, recording a trade, as plain ASGI in front of FastAPI's routing.

`POST /v1/portfolios/{id}/transactions` with a body the route accepts is answered here: the same body model
(`TransactionCreate`, validated from the same JSON value), the same token and writer checks (`Gateway.writer`),
the same command, and the service's reply sent as it came. It skips what FastAPI adds per request (routing through
every route before it, dependency solving, the response model's validation and serialization), which cost several
times the check itself. A request it would refuse for its body or content type goes on to the FastAPI route, which
answers it as documented (the OpenAPI schema is that route's), so every refusal is the route's own.

It sits inside the Idempotency-Key middleware (a key still claims, stores and replays) and the observe middleware
(the answer is counted under the route's template)."""

from typing import TYPE_CHECKING

import orjson
from contracts.envelope import new_id
from contracts.portfolios import RecordTransaction
from contracts.types import utc_now
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import failure_response
from gateway.idempotency import header, read_body, replaying
from gateway.schemas import TransactionCreate
from gateway.security import AccessClaims

if TYPE_CHECKING:
    from gateway.http import Gateway

TRADES_PATH = "/v1/portfolios/{portfolio_id}/transactions"


def record_command(claims: AccessClaims, portfolio_id: str, body: TransactionCreate) -> RecordTransaction:
    """The command of a trade the API accepted. Built without validating again: every field was just validated by
    the API's own types, which accept a subset of the contract's. The envelope is given whole, since pydantic's
    model_construct inspects each default factory it has to call."""
    return RecordTransaction.model_construct(
        message_id=new_id(), correlation_id=new_id(), causation_id=None, occurred_at=utc_now(), schema_version=1,
        owner_id=claims.user_id, portfolio_id=portfolio_id[:100], side=body.side, amount_btc=body.amount_btc,
        at=body.at, fee_usd=body.fee_usd, price_usd=body.price_usd, note=body.note)


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides to read a body as JSON (strict content type): application/json or application/*+json."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    maintype, _, subtype = media.partition("/")
    return media.count("/") == 1 and maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


class HotRoutes:
    def __init__(self, app: ASGIApp, gateway: "Gateway", route: APIRoute) -> None:
        self.app, self.gateway, self.route = app, gateway, route
        self.path = compile_path(TRADES_PATH)[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        matched = self.path.match(scope["path"])
        if matched is None:
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        trade = self._trade(scope, body)
        if trade is None:  # the route answers it (a 413, 422, or whatever FastAPI makes of it)
            return await self.app(scope, replaying(body or b"", receive), send)
        scope["route"] = self.route  # as FastAPI's routing would set it (the metrics name it)
        try:
            claims = await self.gateway.writer(header(scope, b"authorization"))
            result = await self.gateway.backend.ask(record_command(claims, matched["portfolio_id"], trade))
            response = Response(orjson.dumps(result), 202, media_type="application/json")
        except Exception as error:
            response = failure_response(error)
        await response(scope, receive, send)

    @staticmethod
    def _trade(scope: Scope, body: bytes | None) -> TransactionCreate | None:
        """The body as the route would read it, or None when the route must answer (it refuses it, or reads it
        another way)."""
        if body is None or not _is_json(header(scope, b"content-type")):
            return None
        try:
            return TransactionCreate.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError):
            return None
