"""Benchmark: GET /v1/portfolios/{id} requests per second against a FastAPI hello world in the same run."""

import asyncio
import json
import subprocess
import sys
import time

import httpx

from bench.common import Figure, write_results
from bench.stack import running_stack
from scripts.launcher import free_port

CLIENTS, SECONDS = 32, 8


def load(url: str, token: str | None = None) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.load", url, str(CLIENTS), str(SECONDS), *([token] if token else [])]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def hello_world() -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.hello", str(port)])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return load(f"http://127.0.0.1:{port}/")
    finally:
        server.terminate()
        server.wait()


async def prepare(base: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        email = "bench-read@example.com"
        await api.post("/v1/auth/register", json={"email": email, "password": "a long bench passphrase"})
        token = (await api.post("/v1/auth/login", json={"email": email,
                                                         "password": "a long bench passphrase"})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pid = (await api.post("/v1/portfolios", json={"name": "read bench"}, headers=headers)).json()["portfolio_id"]
        for day in range(1, 20):
            await api.post(f"/v1/portfolios/{pid}/transactions", headers=headers,
                           json={"side": "buy", "amount_btc": "0.01", "at": f"2024-02-{day:02d}T12:00:00Z"})
    return token, pid


def main() -> None:
    baseline = hello_world()
    with running_stack("price", "portfolio", "gateway") as stack:
        base = stack.services["gateway"].url
        token, pid = asyncio.run(prepare(base))
        measured = load(f"{base}/v1/portfolios/{pid}", token)
    share = measured["requests_per_second"] / baseline["requests_per_second"]
    write_results("gateway_read", [
        Figure("GET /v1/portfolios/{id} (32 clients)", measured["requests_per_second"], "req/s",
               "FastAPI hello world", baseline["requests_per_second"], "≥ 50% of hello world", share >= 0.5),
        Figure("GET /v1/portfolios/{id} p99", measured["p99_ms"], "ms", "hello world p99", baseline["p99_ms"],
               "report", True),
    ], f"load generator: bench/load.py (httpx, {CLIENTS} keep-alive clients, {SECONDS} s) in its own process; "
       f"errors={measured['errors']}. Each GET checks the JWT and its revocation, then asks the portfolio "
       "service over RabbitMQ request/reply (one broker round trip per read).")


if __name__ == "__main__":
    main()
