"""The SPEC error envelope for every failure, including FastAPI's own validation errors and unknown routes."""

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import ErrorCode

STATUS_OF_CODE = {ErrorCode.VALIDATION: 422, ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409,
                  ErrorCode.INSUFFICIENT_HOLDINGS: 422, ErrorCode.UNAVAILABLE: 503}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
              422: "validation", 429: "rate_limited", 503: "unavailable"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorEnvelope(BaseModel):
    """Every error: {"error": {"code", "message", "details"?}}."""

    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {status: {"model": ErrorEnvelope, "description": HTTP_CODES.get(status, "error")} for status in statuses}


OUTAGES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
"""Database and network failures: a 503 with Retry-After, never a 500."""


def api_error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(envelope(error.code, error.message, error.details), status_code=error.status,
                        headers=error.headers)


def failure_response(error: Exception) -> JSONResponse:
    """The answer to an exception a route raised: its own envelope for an ApiError, else a 503."""
    if isinstance(error, ApiError):
        return api_error_response(error)
    if isinstance(error, OUTAGES):
        structlog.get_logger().warning("dependency_unavailable", error=repr(error))
        return JSONResponse(envelope("unavailable", "A service Bitfolio depends on is unavailable; please try again "
                                                    "shortly."), status_code=503, headers={"Retry-After": "5"})
    structlog.get_logger().error("unexpected_error", error=repr(error), exc_info=error)
    return JSONResponse(envelope("unavailable", "Something went wrong on our side; please try again."),
                        status_code=503, headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return api_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
                  for e in error.errors()]
        first = fields[0] if fields else {"field": "", "message": "invalid"}
        return JSONResponse(envelope("validation", f"{first['field'] or 'request'}: {first['message']}", fields),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        message = {404: "There is nothing at this address.", 405: "This method is not allowed here."}.get(
            error.status_code, str(error.detail))
        return JSONResponse(envelope(HTTP_CODES.get(error.status_code, "error"), message),
                            status_code=error.status_code, headers=getattr(error, "headers", None))

    async def failure(_: Request, error: Exception) -> JSONResponse:
        return failure_response(error)

    # Database and network failures are answered inside the app (not by Starlette's last-resort handler, which
    # re-raises), so the client always gets its 503 with Retry-After; anything else unexpected too (the last line
    # of defence: never a bare 500).
    for caught in (*OUTAGES, Exception):
        app.add_exception_handler(caught, failure)
