"""Benchmark: the gateway's own CPU to record a trade, in process (ASGI called directly, no sockets, the bus
answered at once by a stub), so that the figure is the request path alone and not the machine's noise.

Three ways in the same run, each `--requests` times after a warm-up, CPU from time.process_time():
- POST /v1/portfolios/{id}/transactions as served (gateway.hot answers it in front of FastAPI's routing),
- the same request answered by the FastAPI route (the hot layer taken out of the same app),
- a FastAPI hello world's GET (bench.hello), the same-run baseline.

`python -m bench.gateway_post_cpu [--requests 5000]`
"""

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from contracts.portfolios import RecordTransaction, TransactionStatus, TransactionView
from gateway.accounts import Accounts
from gateway.bus import Backend
from gateway.hot import HotRoutes
from gateway.http import Gateway, build_app
from gateway.security import issue_access_token
from gateway.settings import Settings

from bench.common import Figure, write_results
from bench.hello import app as hello_app
from contracts import Reply

AT = datetime(2024, 3, 1, 10, tzinfo=UTC)
USER = "bench-user"


class AnsweringBus:
    """The portfolio service's reply to a recorded trade, at once (a reply decoded off the wire, as RpcClient's)."""

    connected = True

    def __init__(self) -> None:
        request = RecordTransaction(owner_id=USER, portfolio_id="p", side="buy", amount_btc=Decimal("0.01"), at=AT)
        view = TransactionView(transaction_id="t" * 32, portfolio_id="p", side="buy", amount_btc=Decimal("0.01"),
                               at=AT, fee_usd=Decimal(0), status=TransactionStatus.PENDING, recorded_at=AT,
                               updated_at=AT)
        self.reply = Reply.model_validate_json(Reply.success(request, view, portfolio_version=3).to_json())

    async def call(self, request: Any) -> Reply:
        return self.reply


def scope_of(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}


async def cpu_per_request(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes,
                          requests: int) -> tuple[float, int]:
    """Microseconds of CPU per request, and the status of the last answer."""
    status = 0

    async def one() -> None:
        nonlocal status
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope_of(method, path, headers), receive, send)

    for _ in range(max(200, requests // 10)):
        await one()
    started = time.process_time()
    for _ in range(requests):
        await one()
    return (time.process_time() - started) / requests * 1e6, status


def gateway_app(hot: bool) -> Any:
    settings = Settings(env="test", requests_per_minute=10**9)
    gateway = Gateway(settings, Accounts.create(settings, None), Backend(AnsweringBus()))  # type: ignore[arg-type]
    gateway.accounts.demo_by_user[USER] = False  # a writer already seen (no database here)
    app = build_app(gateway)
    if not hot:
        app.user_middleware = [layer for layer in app.user_middleware if layer.cls is not HotRoutes]
    return app


async def measure(requests: int) -> dict[str, tuple[float, int]]:
    token, _ = issue_access_token(Settings(env="test"), USER, "bench-session")
    body = orjson.dumps({"side": "buy", "amount_btc": "0.01", "at": "2024-03-01T10:00:00Z"})
    headers = [(b"host", b"gateway"), (b"authorization", f"Bearer {token}".encode()),
               (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    path = "/v1/portfolios/p/transactions"
    return {"hot": await cpu_per_request(gateway_app(True), "POST", path, headers, body, requests),
            "route": await cpu_per_request(gateway_app(False), "POST", path, headers, body, requests),
            "hello": await cpu_per_request(hello_app, "GET", "/", [(b"host", b"hello")], b"", requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    requests = parser.parse_args().requests
    load = os.getloadavg()
    measured = asyncio.run(measure(requests))
    hot, route, hello = (measured[name][0] for name in ("hot", "route", "hello"))
    assert measured["hot"][1] == measured["route"][1] == 202 and measured["hello"][1] == 200, measured
    write_results("gateway_post_cpu", [
        Figure("gateway CPU per recorded trade, in process (hot path)", hot, "µs", "FastAPI hello world", hello,
               "≤ 2× hello", hot <= 2 * hello),
        Figure("the same through the FastAPI route", route, "µs", "FastAPI hello world", hello, "", True),
    ], f"ASGI called in process ({requests} requests each, after a warm-up), the bus answered at once by a stub; "
       f"sockets, uvicorn and the bus client are not in it; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
