"""The public /v1 HTTP API: accounts, portfolios, transactions, history, import/export and prices."""

import time
from typing import Annotated, Any, Literal

import orjson
from contracts.asyncapi import asyncapi_document
from contracts.portfolios import (
    IMPORT_FORMATS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_FIELD_CHARS,
    MAX_IMPORT_ROWS,
    CostBasisMethod,
    CreatePortfolio,
    DeletePortfolio,
    DeleteTransaction,
    DeleteTransfer,
    EditTransaction,
    EditTransfer,
    ExportFile,
    ExportTransactions,
    GetHistory,
    GetPortfolio,
    GetTaxReport,
    GetTransaction,
    History,
    ImportReport,
    ImportTransactions,
    Interval,
    ListTransactions,
    PortfolioView,
    RecordTransfer,
    RenamePortfolio,
    SetCostBasisMethod,
    SetPortfolioGoal,
    TaxReport,
    TransactionPage,
    TransactionView,
)
from contracts.prices import Candle, LatestPrice, LatestPriceRequested, PriceAt, PriceAtRequested, PriceRangeRequested
from contracts.types import UnixSeconds, UtcDatetime
from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, Response, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import repository as repo
from gateway import security
from gateway.accounts import Accounts, unauthorized
from gateway.bus import Backend
from gateway.domain.client_address import client_address, trusted_networks
from gateway.domain.rate_limits import SlidingWindow
from gateway.errors import ApiError, install, responses
from gateway.hot import HotRoutes, record_command
from gateway.idempotency import IdempotencyMiddleware
from gateway.observability import ObserveMiddleware
from gateway.reads import PortfolioReads
from gateway.schemas import (
    Credentials,
    LogoutRequest,
    PortfolioCreate,
    PortfolioPatch,
    RefreshRequest,
    TokenPair,
    TransactionCreate,
    TransactionPatch,
    TransferCreate,
    TransferPatch,
    UserOut,
)
from gateway.settings import Settings

PRICE_RANGE_CAP_HOURS = 5000
bearer = HTTPBearer(auto_error=False, description="The access token from /v1/auth/login")


class Gateway:
    """What the routes need: settings, the database pool, the bus, the read model and the per-user request budget."""

    def __init__(self, settings: Settings, accounts: Accounts, backend: Backend) -> None:
        self.settings, self.accounts, self.backend = settings, accounts, backend
        self.reads = PortfolioReads(backend, settings.read_model_capacity, settings.read_your_writes_wait_seconds)
        backend.watcher = self.reads
        self.budget = SlidingWindow(settings.requests_per_minute, 60)
        self.tokens = security.VerifiedTokens(settings)
        self.trusted_proxies = trusted_networks(settings.trusted_proxies)

    def client_ip(self, request: Request) -> str:
        """The end user's address: behind the dashboard (a trusted proxy) every request comes from its host."""
        peer = request.client.host if request.client else "unknown"
        return client_address(peer, request.headers.get("X-Forwarded-For"), self.trusted_proxies)

    def authenticate(self, authorization: str | None) -> security.AccessClaims:
        """The caller's claims from the Authorization header, or 401/429: a verified, unrevoked token within its
        user's request budget."""
        scheme, token = get_authorization_scheme_param(authorization)
        if not token or scheme.lower() != "bearer":
            raise unauthorized("Log in and send the access token as 'Authorization: Bearer <token>'.")
        try:
            claims = self.tokens.read(token)
        except security.InvalidToken as error:
            raise unauthorized(str(error)) from error
        refusal = self.accounts.revocations.refusal(claims.jti, claims.session_id)
        if refusal:
            raise unauthorized(refusal)
        now = time.monotonic()
        wait = self.budget.retry_after(claims.user_id, now)
        if wait:
            raise ApiError(429, "rate_limited", f"Too many requests; try again in {wait} seconds.",
                           headers={"Retry-After": str(wait)})
        self.budget.record(claims.user_id, now)
        return claims

    async def writer(self, authorization: str | None) -> security.AccessClaims:
        """`authenticate`, and the caller may write: an existing account that is not the read-only demo."""
        claims = self.authenticate(authorization)
        demo = await self.accounts.is_demo(claims.user_id)
        if demo is None:
            raise unauthorized("This account no longer exists.")
        if demo:
            raise ApiError(403, "forbidden", "The demo is read-only; register to keep your own portfolios.")
        return claims


def build_app(gateway: Gateway, lifespan: Any = None, readiness: Any = None) -> FastAPI:
    app = FastAPI(
        title="Bitfolio API", version="1.0.0", lifespan=lifespan,
        # No OpenTelemetry here (Prometheus metrics and JSON logs instead): FastAPI would look for it per request
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Track Bitcoin buys and sells and see what every trade and portfolio is worth. Money is sent "
                    "and returned as decimal strings. Every error is {\"error\": {\"code\", \"message\", "
                    "\"details\"}}. Authenticate with `Authorization: Bearer <access_token>`. Every write "
                    "(POST, PATCH, DELETE) under /v1/portfolios accepts an `Idempotency-Key` header (up to 255 "
                    "characters): a repeat with the same key and body within 24 hours is applied once and answered "
                    "as the first time (with `Idempotent-Replayed: true`); the key with another body is a 409.",
    )
    install(app)
    backend, accounts, reads = gateway.backend, gateway.accounts, gateway.reads

    # ------------------------------------------------------------------ operations (first: /healthz is matched
    # before every other route is tried)
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses=responses(503))
    async def readyz() -> JSONResponse:
        checks = await readiness() if readiness else {}
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503,
                            headers=None if ready else {"Retry-After": "5"})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Prometheus text"}})
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["ops"], description="The AsyncAPI document of every event and command.")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document()

    async def current_user(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                           ) -> security.AccessClaims:
        return gateway.authenticate(request.headers.get("authorization"))

    async def writer(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                     ) -> security.AccessClaims:
        return await gateway.writer(request.headers.get("authorization"))

    User = Annotated[security.AccessClaims, Depends(current_user)]
    Writer = Annotated[security.AccessClaims, Depends(writer)]

    # ------------------------------------------------------------------ the hottest reads
    # Registered before every router, so they are matched first, and without dependencies (FastAPI's dependency
    # solving costs more than the read itself): each reads the token with `gateway.authenticate`, as
    # `current_user` does.
    # Both answer ready JSON from the read model (gateway.reads).
    Offset = Annotated[int, Query(ge=0, le=1_000_000)]
    read_options: dict[str, Any] = {"tags": ["portfolios"], "openapi_extra": {"security": [{"HTTPBearer": []}]}}

    @app.get("/v1/portfolios", response_model=list[PortfolioView], responses=responses(401, 422, 503),
             description="Your portfolios, oldest first; the total is in the X-Total-Count header.", **read_options)
    async def list_portfolios(request: Request, offset: Offset = 0,
                              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
        claims = gateway.authenticate(request.headers.get("authorization"))
        page = await reads.portfolios(claims.user_id, offset, limit)
        return Response(page.body, media_type="application/json", headers={"X-Total-Count": str(page.total)})

    @app.get("/v1/portfolios/{portfolio_id}", response_model=PortfolioView, responses=responses(401, 404, 503),
             **read_options)
    async def get_portfolio(portfolio_id: str, request: Request, min_version: Annotated[int | None, Query(
            ge=1, le=2**31 - 1, description="At least this version (say, from a portfolio.updated the client "
                                            "received): the read waits briefly for it, then asks the service.")] = None
                            ) -> Response:
        claims = gateway.authenticate(request.headers.get("authorization"))
        return Response(await reads.portfolio(claims.user_id, portfolio_id[:100], min_version),
                        media_type="application/json")

    # ------------------------------------------------------------------ auth
    auth = APIRouter(prefix="/v1/auth", tags=["auth"])

    @auth.post("/register", status_code=201, response_model=UserOut, responses=responses(409, 422, 429, 503))
    async def register(body: Credentials, request: Request) -> UserOut:
        user = await accounts.register(body.email, body.password, gateway.client_ip(request))
        return UserOut(id=user.id, email=user.email, is_demo=user.is_demo, created_at=user.created_at)

    @auth.post("/login", response_model=TokenPair, responses=responses(401, 422, 429, 503))
    async def login(body: Credentials, request: Request) -> TokenPair:
        return await accounts.login(body.email, body.password, gateway.client_ip(request))

    @auth.post("/refresh", response_model=TokenPair, responses=responses(401, 422, 429, 503))
    async def refresh(body: RefreshRequest, request: Request) -> TokenPair:
        return await accounts.refresh(body.refresh_token, gateway.client_ip(request))

    @auth.post("/logout", status_code=204, responses=responses(401, 422, 503))
    async def logout(claims: User, body: LogoutRequest | None = None) -> Response:
        await accounts.logout(claims, body.refresh_token if body else None)
        return Response(status_code=204)

    @auth.post("/demo", response_model=TokenPair, responses=responses(404, 429, 503),
               description="Log in as the read-only demo account seeded with real 2024 trades.")
    async def demo(request: Request) -> TokenPair:
        return await accounts.demo(gateway.client_ip(request))

    app.include_router(auth)

    @app.get("/v1/me", response_model=UserOut, tags=["auth"], responses=responses(401, 503))
    async def me(claims: User) -> UserOut:
        user = await repo.user_by_id(accounts.pool, claims.user_id)
        if user is None:
            raise unauthorized("This account no longer exists.")
        return UserOut(id=user.id, email=user.email, is_demo=user.is_demo, created_at=user.created_at)

    # ------------------------------------------------------------------ portfolios
    portfolios = APIRouter(prefix="/v1/portfolios", tags=["portfolios"])

    def ready_json(result: Any, status: int = 200) -> Response:
        """A service's result as it came: the portfolio service wrote it from the route's response model, so
        validating it into that model again and writing it out would give the same bytes."""
        return Response(orjson.dumps(result), status, media_type="application/json")

    def paginated(items: list[Any], total: int) -> JSONResponse:
        return JSONResponse([i.model_dump(mode="json") for i in items], headers={"X-Total-Count": str(total)})

    @portfolios.post("", status_code=201, response_model=PortfolioView, responses=responses(401, 403, 422, 503))
    async def create_portfolio(body: PortfolioCreate, claims: Writer) -> Any:
        return await backend.ask(CreatePortfolio(owner_id=claims.user_id, name=body.name,
                                                 cost_basis_method=body.cost_basis_method, goal_usd=body.goal_usd))

    @portfolios.patch("/{portfolio_id}", response_model=PortfolioView, responses=responses(401, 403, 404, 422, 503),
                      description="Change the name, the goal (null clears it) or the cost-basis method; a new "
                                  "method recomputes the metrics from the log.")
    async def patch_portfolio(portfolio_id: str, body: PortfolioPatch, claims: Writer) -> Any:
        pid, owner = portfolio_id[:100], claims.user_id
        result = None
        if body.name is not None:
            result = await backend.ask(RenamePortfolio(owner_id=owner, portfolio_id=pid, name=body.name))
        if "goal_usd" in body.model_fields_set:
            result = await backend.ask(SetPortfolioGoal(owner_id=owner, portfolio_id=pid, goal_usd=body.goal_usd))
        if body.cost_basis_method is not None:
            result = await backend.ask(SetCostBasisMethod(owner_id=owner, portfolio_id=pid,
                                                          cost_basis_method=body.cost_basis_method))
        return result if result is not None else await backend.ask(GetPortfolio(owner_id=owner, portfolio_id=pid))

    @portfolios.delete("/{portfolio_id}", status_code=204, responses=responses(401, 403, 404, 503))
    async def delete_portfolio(portfolio_id: str, claims: Writer) -> Response:
        await backend.ask(DeletePortfolio(owner_id=claims.user_id, portfolio_id=portfolio_id[:100]))
        return Response(status_code=204)

    @portfolios.get("/{portfolio_id}/history", response_model=History, responses=responses(401, 404, 422, 503))
    async def history(portfolio_id: str, claims: User, start: UtcDatetime | None = None,
                      end: UtcDatetime | None = None, interval: Interval = Interval.DAY) -> Any:
        return await backend.ask(GetHistory(owner_id=claims.user_id, portfolio_id=portfolio_id[:100], start=start,
                                            end=end, interval=interval))

    @portfolios.get("/{portfolio_id}/tax-report", response_model=TaxReport, responses={
        200: {"content": {"application/json": {}, "text/csv": {}}, "description": "the report"},
        **responses(401, 404, 422, 503)},
        description="Every counted sell of the UTC year, one line per lot it consumed under `method` (default: the "
                    "portfolio's lot method, else fifo; average has no lots and is a 422), with the totals. "
                    "`format=csv` gives the lines in the column order of IRS Form 8949.")
    async def tax_report(portfolio_id: str, claims: User, year: Annotated[int, Query(ge=1970, le=9999)],
                         method: CostBasisMethod | None = None, format: Literal["json", "csv"] = "json") -> Any:
        query = GetTaxReport(owner_id=claims.user_id, portfolio_id=portfolio_id[:100], year=year, method=method,
                             format=format)
        if format == "json":
            return await backend.ask(query)
        report = await backend.ask_as(query, ExportFile)
        return Response(report.content, media_type=report.content_type,
                        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'})

    # ------------------------------------------------------------------ transactions
    @portfolios.post("/{portfolio_id}/transactions", status_code=202, response_model=TransactionView,
                     responses=responses(401, 403, 404, 422, 503),
                     description="Records the trade; without a price it is `pending` until the market price at "
                                 "`at` arrives, then `priced` (or `failed` with a reason).")
    async def record_transaction(portfolio_id: str, body: TransactionCreate, claims: Writer) -> Response:
        # A body it accepts is answered by gateway.hot in front of the routing: this answers the rest (its errors)
        return ready_json(await backend.ask(record_command(claims, portfolio_id, body)), 202)

    @portfolios.get("/{portfolio_id}/transactions", response_model=list[TransactionView],
                    responses=responses(401, 404, 422, 503),
                    description="Newest first, with per-transaction metrics; the total is in X-Total-Count.")
    async def list_transactions(portfolio_id: str, claims: User, offset: Offset = 0,
                                limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> JSONResponse:
        page = await backend.ask_as(ListTransactions(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                                     offset=offset, limit=limit), TransactionPage)
        return paginated(page.items, page.total)

    @portfolios.post("/{portfolio_id}/transactions/import", response_model=ImportReport,
                     responses=responses(401, 403, 404, 413, 422, 503),
                     description="CSV upload: the generic columns side,amount_btc,at,fee_usd,price_usd,note, or an "
                                 "exchange's own export, recognised by its header (after any preamble lines): "
                                 f"{', '.join(t for n, t in IMPORT_FORMATS.items() if n != 'generic')}. The report's "
                                 f"`format` names the file read ({', '.join(f'`{n}`' for n in IMPORT_FORMATS)}). "
                                 "Rows that are not BTC buys or sells (deposits, withdrawals, sends, other assets, "
                                 "rows not settled) are skipped with a reason; a BTC fee becomes fee_usd at the "
                                 "trade's price and the amount is the change in BTC held. "
                                 "dry_run checks without saving; a file with bad rows "
                                 "saves nothing unless skip_invalid. Limits: at most "
                                 f"{MAX_IMPORT_BYTES // 1024 // 1024} MiB (else 413), {MAX_IMPORT_ROWS:,} rows "
                                 f"(else 422), {MAX_IMPORT_FIELD_CHARS:,} characters per field (else a row error); "
                                 "prices in USD (or USDT, USDC, FDUSD, BUSD).")
    async def import_transactions(portfolio_id: str, claims: Writer, file: Annotated[UploadFile, File()],
                                  dry_run: bool = False, skip_invalid: bool = False) -> Any:
        raw = await file.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            raise ApiError(413, "too_large", f"The file is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MiB; split it.",
                           {"max_bytes": MAX_IMPORT_BYTES})
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ApiError(422, "validation", "The file is not UTF-8 text.") from error
        return await backend.ask(ImportTransactions(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                                    csv_text=text, dry_run=dry_run, skip_invalid=skip_invalid))

    @portfolios.get("/{portfolio_id}/transactions/export", responses={
        200: {"content": {"text/csv": {}, "application/json": {}}, "description": "the file"},
        **responses(401, 404, 422, 503)})
    async def export_transactions(portfolio_id: str, claims: User,
                                  format: Literal["csv", "json"] = "csv") -> Response:
        exported = await backend.ask_as(ExportTransactions(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                                           format=format), ExportFile)
        return Response(exported.content, media_type=exported.content_type,
                        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'})

    @portfolios.get("/{portfolio_id}/transactions/{transaction_id}", response_model=TransactionView,
                    responses=responses(401, 404, 503))
    async def get_transaction(portfolio_id: str, transaction_id: str, claims: User) -> Any:
        return await backend.ask(GetTransaction(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                                transaction_id=transaction_id[:100]))

    @portfolios.patch("/{portfolio_id}/transactions/{transaction_id}", response_model=TransactionView,
                      responses=responses(401, 403, 404, 422, 503),
                      description="Change amount, time, fee, price or note; a changed time is priced again.")
    async def edit_transaction(portfolio_id: str, transaction_id: str, body: TransactionPatch, claims: Writer
                               ) -> Any:
        clear_price = "price_usd" in body.model_fields_set and body.price_usd is None
        fields = {k: getattr(body, k) for k in body.model_fields_set if k != "price_usd" or not clear_price}
        return await backend.ask(EditTransaction(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                                 transaction_id=transaction_id[:100], clear_price=clear_price,
                                                 **fields))

    @portfolios.delete("/{portfolio_id}/transactions/{transaction_id}", status_code=204,
                       responses=responses(401, 403, 404, 422, 503))
    async def delete_transaction(portfolio_id: str, transaction_id: str, claims: Writer) -> Response:
        await backend.ask(DeleteTransaction(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                            transaction_id=transaction_id[:100]))
        return Response(status_code=204)

    # ------------------------------------------------------------------ transfers
    @portfolios.post("/{portfolio_id}/transfers", status_code=202, response_model=TransactionView,
                     responses=responses(401, 403, 404, 409, 422, 503),
                     description="Moves BTC to another of your portfolios; not a sale. The lots the source's "
                                 "method would sell arrive in the destination with their cost and buy times; "
                                 "`fee_btc` is lost on the way. Answers the source's side (`transfer_out`), "
                                 "`pending` until priced at `at`; the destination lists its `transfer_in`. "
                                 "422 `insufficient_holdings` when this portfolio does not hold `amount_btc` at `at`.")
    async def record_transfer(portfolio_id: str, body: TransferCreate, claims: Writer) -> Any:
        return await backend.ask(RecordTransfer(
            owner_id=claims.user_id, portfolio_id=portfolio_id[:100], to_portfolio_id=body.to_portfolio_id,
            amount_btc=body.amount_btc, at=body.at, fee_btc=body.fee_btc, note=body.note))

    @portfolios.patch("/{portfolio_id}/transfers/{transfer_id}", response_model=TransactionView,
                      responses=responses(401, 403, 404, 409, 422, 503),
                      description="Change amount, time, fee or note of a transfer of this portfolio (either side); "
                                  "both portfolios change. Answers this portfolio's side.")
    async def edit_transfer(portfolio_id: str, transfer_id: str, body: TransferPatch, claims: Writer) -> Any:
        return await backend.ask(EditTransfer(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                              transfer_id=transfer_id[:100],
                                              **{k: getattr(body, k) for k in body.model_fields_set}))

    @portfolios.delete("/{portfolio_id}/transfers/{transfer_id}", status_code=204,
                       responses=responses(401, 403, 404, 409, 422, 503),
                       description="Removes the transfer from both portfolios.")
    async def delete_transfer(portfolio_id: str, transfer_id: str, claims: Writer) -> Response:
        await backend.ask(DeleteTransfer(owner_id=claims.user_id, portfolio_id=portfolio_id[:100],
                                         transfer_id=transfer_id[:100]))
        return Response(status_code=204)

    app.include_router(portfolios)

    # ------------------------------------------------------------------ prices
    prices = APIRouter(prefix="/v1/prices", tags=["prices"])

    @prices.get("/at/{unix}", response_model=PriceAt, responses=responses(404, 422, 503),
                description="The BTC-USD price at a unix time: the open of the candle of that hour.")
    async def price_at(unix: UnixSeconds) -> Any:
        return await backend.ask(PriceAtRequested(at=unix))

    @prices.get("/latest", response_model=LatestPrice, responses=responses(404, 503))
    async def latest() -> Any:
        return await backend.ask(LatestPriceRequested())

    @prices.get("", response_model=list[Candle], responses=responses(422, 503),
                description=f"Hourly candles from start to end (unix seconds), at most {PRICE_RANGE_CAP_HOURS} "
                            "hours per request.")
    async def price_range(start: UnixSeconds, end: UnixSeconds, step: Literal["hour", "day"] = "hour") -> Any:
        if end < start:
            raise ApiError(422, "validation", "end must not be before start.")
        if (end - start) // 3600 > PRICE_RANGE_CAP_HOURS:
            raise ApiError(422, "validation", f"A range may span at most {PRICE_RANGE_CAP_HOURS} hours.")
        result = await backend.ask(PriceRangeRequested(start=start, end=end, step=step))
        return result["candles"]

    app.include_router(prices)

    # ------------------------------------------------------------------ middleware, the last added outermost
    trades = next(route for route in portfolios.routes
                  if isinstance(route, APIRoute) and route.endpoint is record_transaction)
    app.add_middleware(HotRoutes, gateway=gateway, route=trades)  # innermost: in front of FastAPI's routing
    app.add_middleware(IdempotencyMiddleware, gateway=gateway)  # it sees the routes' own answers
    app.add_middleware(CORSMiddleware, allow_origins=gateway.settings.cors_origins, allow_credentials=True,
                       allow_methods=["*"], allow_headers=["*"],
                       expose_headers=["X-Total-Count", "Retry-After", "Idempotent-Replayed"])
    app.add_middleware(ObserveMiddleware)  # outermost: it times and counts every answer, errors included
    return app
