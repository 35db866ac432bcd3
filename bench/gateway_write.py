"""Benchmark: POST transactions through the gateway until priced, 50 concurrent clients, against the seed's
design (a synchronous HTTP price lookup per transaction with a new client each time) in the same run."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import Figure, percentile, write_results
from bench.stack import running_stack

CLIENTS, PER_CLIENT = 50, 20


async def seed_design_baseline(price_url: str) -> float:
    """tx/s when every transaction makes its own synchronous HTTP price call with a fresh client (the seed)."""
    async def one(n: int) -> None:
        async with httpx.AsyncClient() as client:
            (await client.get(f"{price_url}/prices/at/{1704067200 + n * 3600}")).raise_for_status()
    started = time.perf_counter()
    for start in range(0, CLIENTS * PER_CLIENT, CLIENTS):
        await asyncio.gather(*(one(n) for n in range(start, start + CLIENTS)))
    return CLIENTS * PER_CLIENT / (time.perf_counter() - started)


async def measure(base: str) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
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
                while tx["status"] == "pending":
                    await asyncio.sleep(0.01)
                    tx = (await api.get(f"/v1/portfolios/{pid}/transactions/{tx['transaction_id']}",
                                        headers=headers)).json()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client(h, p, i) for i, (h, p) in enumerate(portfolios)))
        return CLIENTS * PER_CLIENT / (time.perf_counter() - started), latencies


def main() -> None:
    with running_stack("price", "portfolio", "gateway") as stack:
        baseline = asyncio.run(seed_design_baseline(stack.services["price"].url))
        rate, latencies = asyncio.run(measure(stack.services["gateway"].url))
    p99 = percentile(latencies, 0.99) * 1000
    write_results("gateway_write", [
        Figure(f"POST → priced, {CLIENTS} clients", rate, "tx/s", "seed design: sync HTTP price call per tx",
               baseline, "≥ 1,000 tx/s", rate >= 1000),
        Figure("POST → priced p99", p99, "ms", "p50", percentile(latencies, 0.5) * 1000, "< 250 ms", p99 < 250),
    ], "each client waits until its trade is priced (polling GET) before sending the next; the load generator "
       "shares the 2 cores with all services and the broker")


if __name__ == "__main__":
    main()
