"""Recording a trade in front of FastAPI's routing (gateway.hot) answers exactly as the FastAPI route does.

The same app is built twice over one gateway and one database: once as served, once without the hot layer, so
every request below is answered by the route itself. Both must give the same status, headers and body, and send
the portfolio service the same command."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
from contracts.portfolios import RecordTransaction, Side, TransactionStatus, TransactionView
from contracts.rpc import RequestTimeout
from gateway import repository as repo
from gateway.accounts import Accounts
from gateway.bus import Backend
from gateway.db import create_pool
from gateway.hot import HotRoutes
from gateway.http import Gateway, build_app
from gateway.security import hash_password
from gateway.settings import Settings

from contracts import ErrorCode, Reply
from tests.integration.gateway.conftest import PASSWORD

AT = datetime(2024, 3, 1, 10, tzinfo=UTC)


class PortfolioService:
    """Stands in for the portfolio service's request/reply: a trade of portfolio 'p' is recorded, 'gone' is not
    found and 'slow' never answers."""

    connected = True

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def call(self, request: Any) -> Reply:
        self.requests.append(request)
        if request.portfolio_id == "slow":
            raise RequestTimeout("no answer")
        if request.portfolio_id != "p":
            return Reply.failure(request, ErrorCode.NOT_FOUND, f"No portfolio {request.portfolio_id} was found.",
                                 {"portfolio_id": request.portfolio_id})
        view = TransactionView(transaction_id="t1", portfolio_id="p", side=request.side, amount_btc=request.amount_btc,
                               at=request.at, fee_usd=request.fee_usd, price_usd=request.price_usd,
                               status=TransactionStatus.PENDING, note=request.note, recorded_at=AT, updated_at=AT)
        return Reply.success(request, view, portfolio_version=2)


@pytest.fixture
async def both(gateway_settings: Settings) -> Any:
    """(served app client, route-only app client, the fake service, the gateway's pool)."""
    pool = await create_pool(gateway_settings.asyncpg_dsn)
    service = PortfolioService()
    gateway = Gateway(gateway_settings, Accounts.create(gateway_settings, pool), Backend(service))  # type: ignore[arg-type]
    served = build_app(gateway)
    route_only = build_app(gateway)
    route_only.user_middleware = [layer for layer in route_only.user_middleware if layer.cls is not HotRoutes]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway")
               for app in (served, route_only)]
    yield clients[0], clients[1], service, pool
    for client in clients:
        await client.aclose()
    await pool.close()


async def token_of(api: httpx.AsyncClient) -> str:
    email = f"user-{uuid4().hex[:10]}@example.com"
    assert (await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    return str((await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()["access_token"])


def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {name: value for name, value in response.headers.items() if name != "x-correlation-id"}
    return response.status_code, headers, response.content


def command_fields(request: RecordTransaction) -> dict[str, Any]:
    return request.model_dump(exclude={"message_id", "correlation_id", "occurred_at"})


GOOD = {"side": "buy", "amount_btc": "0.01", "at": "2024-03-01T10:00:00Z"}
BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("a market-priced buy", orjson.dumps(GOOD), {}),
    ("every field", orjson.dumps({**GOOD, "side": "sell", "fee_usd": "1.50", "price_usd": "61000.1",
                                  "note": "Épargne 😀", "at": 1709287200}), {}),
    ("no content type", orjson.dumps(GOOD), {"content-type": ""}),
    ("a +json content type", orjson.dumps(GOOD), {"content-type": "application/vnd.bitfolio+json"}),
    ("a content type with a charset", orjson.dumps(GOOD), {"content-type": "Application/JSON; charset=utf-8"}),
    ("a content type with two slashes", orjson.dumps(GOOD), {"content-type": "application/a/b+json"}),
    ("an amount as a JSON number", orjson.dumps({**GOOD, "amount_btc": 0.01}), {}),
    ("nine decimals", orjson.dumps({**GOOD, "amount_btc": "0.000000001"}), {}),
    ("an unknown field", orjson.dumps({**GOOD, "extra": 1}), {}),
    ("no side", orjson.dumps({"amount_btc": "1", "at": "2024-03-01T10:00:00Z"}), {}),
    ("not JSON", b"{side: buy", {}),
    ("a JSON list", b"[]", {}),
    ("NaN", b'{"side": "buy", "amount_btc": NaN, "at": "2024-03-01T10:00:00Z"}', {}),
    ("a form", b"side=buy&amount_btc=1", {"content-type": "application/x-www-form-urlencoded"}),
    ("plain text holding JSON", orjson.dumps(GOOD), {"content-type": "text/plain"}),
    ("an empty body", b"", {}),
]


@pytest.mark.parametrize(("case", "body", "headers"), BODIES, ids=[case for case, _, _ in BODIES])
async def test_a_body_is_answered_as_the_route_answers_it(both: Any, case: str, body: bytes,
                                                          headers: dict[str, str]) -> None:
    served, route_only, service, _ = both
    authorized = {"Authorization": f"Bearer {await token_of(served)}", "content-type": "application/json",
                  **headers}
    authorized = {name: value for name, value in authorized.items() if value}
    hot = await served.post("/v1/portfolios/p/transactions", content=body, headers=authorized)
    sent_by_hot = list(service.requests)
    routed = await route_only.post("/v1/portfolios/p/transactions", content=body, headers=authorized)
    assert answer(hot) == answer(routed), case
    assert [command_fields(r) for r in sent_by_hot] == [command_fields(r) for r in service.requests[len(sent_by_hot):]]


async def test_a_recorded_trade_is_the_services_view_and_its_command(both: Any) -> None:
    served, _, service, _ = both
    token = await token_of(served)
    response = await served.post("/v1/portfolios/p/transactions", headers={"Authorization": f"Bearer {token}"},
                                 json={**GOOD, "fee_usd": "2", "note": "n"})
    assert response.status_code == 202
    assert TransactionView.model_validate_json(response.content).amount_btc == Decimal("0.01")
    (sent,) = service.requests
    assert isinstance(sent, RecordTransaction) and sent.portfolio_id == "p" and sent.side == Side.BUY
    assert (sent.amount_btc, sent.fee_usd, sent.at, sent.note) == (Decimal("0.01"), Decimal(2), AT, "n")
    assert RecordTransaction.model_validate_json(sent.to_json()) == sent, "the command is what the contract reads"


async def callers(served: httpx.AsyncClient, pool: Any) -> dict[str, dict[str, str]]:
    demo_id = uuid4().hex
    await repo.add_user(pool, demo_id, f"demo-{demo_id}@example.com", hash_password("demo passphrase 1234"),
                        is_demo=True)
    settings = Settings(env="test")
    from gateway.security import issue_access_token
    demo_token, _ = issue_access_token(settings, demo_id, uuid4().hex)
    ghost_token, _ = issue_access_token(settings, uuid4().hex, uuid4().hex)
    return {"no token": {}, "a forged token": {"Authorization": "Bearer abc.def.ghi"},
            "not bearer": {"Authorization": f"Basic {await token_of(served)}"},
            "the demo": {"Authorization": f"Bearer {demo_token}"},
            "an account that is gone": {"Authorization": f"Bearer {ghost_token}"},
            "a writer": {"Authorization": f"Bearer {await token_of(served)}"}}


@pytest.mark.parametrize("path", ["/v1/portfolios/p/transactions", "/v1/portfolios/gone/transactions",
                                  "/v1/portfolios/slow/transactions", "/v1/portfolios/p/transactions/",
                                  "/v1/portfolios//transactions"])
async def test_callers_and_service_answers_are_the_routes(both: Any, path: str) -> None:
    served, route_only, _, pool = both
    for who, headers in (await callers(served, pool)).items():
        hot = await served.post(path, json=GOOD, headers=headers)
        routed = await route_only.post(path, json=GOOD, headers=headers)
        assert answer(hot) == answer(routed), (who, path, hot.text)
        if who == "a writer" and path.endswith("/p/transactions"):
            assert hot.status_code == 202
