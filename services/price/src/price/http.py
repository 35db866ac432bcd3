"""The operator HTTP API of the price service: prices at a time, in a range, the latest; health and metrics."""

from datetime import UTC, datetime
from typing import Annotated, Any

from contracts.prices import Candle, LatestPriceRequested, PriceAt, PriceAtRequested, PriceRangeRequested
from contracts.types import UnixSeconds
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import ErrorCode
from price import handlers
from price.handlers import PriceService

STATUS_OF = {ErrorCode.VALIDATION: 422, ErrorCode.NOT_FOUND: 404, ErrorCode.UNAVAILABLE: 503}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.message, self.details = status, code, message, details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def install_error_envelope(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error_body(error.code, error.message, error.details), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()]
        first = f"{fields[0]['field']}: {fields[0]['message']}" if fields else "The request is not valid."
        return JSONResponse(error_body("validation", first, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "error")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)


def _unwrap(reply: Any, model: type) -> Any:
    if not reply.ok:
        raise ApiError(STATUS_OF.get(reply.error.code, 400), reply.error.code, reply.error.message, reply.error.details)
    return reply.result_as(model)


def build_http_app(service: PriceService, readiness: Any, range_cap_hours: int, lifespan: Any = None) -> FastAPI:
    app = FastAPI(title="Bitfolio price service (operator API)", version="0.1.0", lifespan=lifespan)
    install_error_envelope(app)
    prices = APIRouter(prefix="/prices", tags=["prices"])

    @prices.get("/at/{unix}", response_model=PriceAt, responses={404: {"description": "No price at that time"}})
    async def price_at(unix: UnixSeconds) -> PriceAt:
        """The open of the candle that starts at floor(unix / 3600) * 3600."""
        return _unwrap(await handlers.answer_price_at(service, PriceAtRequested(at=unix)), PriceAt)

    @prices.get("/latest")
    async def latest() -> dict[str, Any]:
        reply = await handlers.answer_latest(service, LatestPriceRequested())
        if not reply.ok:
            raise ApiError(404, "not_found", reply.error.message)  # type: ignore[union-attr]
        return reply.result  # type: ignore[no-any-return]

    @prices.get("", response_model=list[Candle],
                description=f"Candles from start to end, oldest first; at most {range_cap_hours} hours per request.")
    async def price_range(
        start: Annotated[UnixSeconds, Query(description="unix seconds")],
        end: Annotated[UnixSeconds, Query(description="unix seconds")],
        step: str = Query("hour", pattern="^(hour|day)$"),
    ) -> list[Candle]:
        if end < start:
            raise ApiError(422, "validation", "end must not be before start.")
        if (end - start) // 3600 > range_cap_hours:
            raise ApiError(422, "validation", f"A range may span at most {range_cap_hours} hours; ask in pages.",
                           {"cap_hours": range_cap_hours})
        reply = await handlers.answer_price_range(service, PriceRangeRequested(start=start, end=end, step=step))
        return [Candle.model_validate(c) for c in reply.result["candles"]]

    app.include_router(prices)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "time": datetime.now(UTC).isoformat()}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
