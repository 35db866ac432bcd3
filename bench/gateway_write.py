"""Benchmark: POST transactions through the gateway until priced, 50 concurrent clients, against the seed's
design (a synchronous HTTP price lookup per transaction with a new client each time) in the same run.

A client learns that its trade is priced from portfolio.updated on the bus (as the dashboard does), not by polling.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import Figure, percentile, write_results
from bench.stack import running_stack
from bench.trades import CLIENTS, PER_CLIENT, seed_design_baseline, watch_priced


async def measure(base: str, rabbit_url: str) -> tuple[float, list[float]]:
    priced: dict[str, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()
    connection = await watch_priced(rabbit_url, priced)
    try:
        return await _measure(base, priced, loop)
    finally:
        await connection.close()


async def _measure(base: str, priced: dict[str, "asyncio.Future[float]"], loop: asyncio.AbstractEventLoop
                   ) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=CLIENTS)) as api:
        tokens = []
        for i in range(CLIENTS):
            email = f"bench-write-{i}@example.com"
            await api.post("/v1/auth/register", json={"email": email, "password": "a long bench passphrase"})
            tokens.append((await api.post("/v1/auth/login", json={"email": email, "password":
                                                                  "a long bench passphrase"})).json()["access_token"])
        portfolios = []
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            portfolios.append((headers, (await api.post("/v1/portfolios", json={"name": "w"}, headers=headers)
                                         ).json()["portfolio_id"]))
        latencies: list[float] = []

        async def client(headers: dict[str, str], pid: str, index: int) -> None:
            for n in range(PER_CLIENT):
                at = datetime(2024, 1, 2, tzinfo=UTC) + timedelta(hours=index * PER_CLIENT + n)
                started = time.perf_counter()
                tx = (await api.post(f"/v1/portfolios/{pid}/transactions", headers=headers,
                                     json={"side": "buy", "amount_btc": "0.01", "at": at.isoformat()})).json()
                done = priced.setdefault(tx["transaction_id"], loop.create_future())
                latencies.append(await asyncio.wait_for(done, 60) - started)

        started = time.perf_counter()
        await asyncio.gather(*(client(h, p, i) for i, (h, p) in enumerate(portfolios)))
        return CLIENTS * PER_CLIENT / (time.perf_counter() - started), latencies


UNLIMITED_SIGN_UPS = {"GATEWAY_REGISTRATIONS_PER_IP_PER_HOUR": "1000", "GATEWAY_TOKEN_REQUESTS_PER_IP_PER_MINUTE": "1000"}
"""Every client signs up and logs in from this one address: the per-address limits would refuse most of them."""


def main() -> None:
    figures = []
    for copies in (1, 3):
        with running_stack("price", "portfolio", "gateway", env=UNLIMITED_SIGN_UPS) as stack:
            for extra in range(2, copies + 1):
                stack.start("portfolio", copy=extra)
                stack.start("price", copy=extra)
            baseline = asyncio.run(seed_design_baseline(stack.services["price"].url))
            rate, latencies = asyncio.run(measure(stack.services["gateway"].url, stack.rabbit_url))
        p99 = percentile(latencies, 0.99) * 1000
        label = "1 copy each" if copies == 1 else f"{copies} copies of portfolio and price"
        figures += [
            Figure(f"POST → priced, {CLIENTS} clients, {label}", rate, "tx/s",
                   "seed design: sync HTTP price call per tx", baseline, "≥ 1,000 tx/s", rate >= 1000),
            Figure(f"POST → priced p99, {label}", p99, "ms", "p50", percentile(latencies, 0.5) * 1000, "< 250 ms",
                   p99 < 250)]
    write_results("gateway_write", figures,
                  "closed loop: each client posts, waits for its trade's portfolio.updated (priced), then posts the "
                  "next; the load generator shares the 2 cores with the services and the broker")


if __name__ == "__main__":
    main()
