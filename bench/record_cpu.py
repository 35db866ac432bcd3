"""Benchmark: the CPU the whole system spends per recorded trade, and POST-to-priced latency (issue 13).

32 users, each with a portfolio, each posting with its own HTTP client and waiting until its trade is priced (the
trade's `portfolio.updated`, as the dashboard learns it), in three rounds of which the least CPU a trade is kept. The CPU of every process (gateway, portfolio, price,
web, the RabbitMQ node, the Postgres backends of our databases) is read from /proc and divided by the trades.
A second run posts at half the measured peak rate (open loop, paced) and reports p50/p99 POST-to-priced.
Beside it, the seed's design: a synchronous HTTP price call per trade with a new client each time.

`python -m bench.record_cpu [--trades-per-user 40]`

On a machine whose shared RabbitMQ node serves other runs, point BITFOLIO_BENCH_RABBIT_URL at a private node and
BITFOLIO_BENCH_RABBIT_PID at its beam.smp (with RABBITMQ_NODENAME set for rabbitmqctl), so its CPU is ours alone.
`bench.record_messages` counts the messages per trade by routing key; `bench.rabbit_message_cost` prices each
delivery setting on the node.
"""

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bench.common import Figure, percentile, write_results
from bench.cpu import CpuMeter, fixed, postgres_backends, rabbitmq_node
from bench.gateway_read import hello_world, wrk
from bench.market_trades import hourly_opens, market_hours
from bench.stack import running_stack
from bench.trades import seed_design_baseline, watch_priced
from scripts.launcher import Launcher

USERS = 32
SERVICES = ("gateway", "portfolio", "price", "web")
CPU_GOAL_MS = 4.0
BEFORE_CPU_MS = 16.2
"""This bench on commit 1e85d9e (before issue 13's write path work), on this machine at load 1.5 (2026-11-25):
16.2 ms a trade at 73 trades/s (portfolio 5.3, postgres 2.8, gateway 2.8, RabbitMQ 2.4, price 2.1, web 0.9).
The old code cannot run beside the new in one run, so the figure is kept; re-measure it by checking out that
commit's contracts, services and web."""
STACK_ENV = {"WEB_STORAGE_SECRET": "bench-web-storage-secret-32-bytes-long",
             "GATEWAY_REGISTRATIONS_PER_IP_PER_HOUR": "1000", "GATEWAY_TOKEN_REQUESTS_PER_IP_PER_MINUTE": "1000"}
P99_GOAL_MS = 250.0
ISSUE_HELLO_US = 1e6 / 13_400
"""A FastAPI hello world request's CPU on the machine where issue 13 set its goals: 13,400–15,000 req/s under wrk -c32
in the run that measured 8.9 ms a trade, one uvicorn worker saturating its core (the slowest rate taken, so the
goal below is the strictest reading)."""
ISSUE_BEFORE_REQUESTS = 8.9e3 / ISSUE_HELLO_US
"""The issue's "today": 8.9 ms a trade, in hello-world requests of that machine (119)."""
GOAL_REQUESTS = CPU_GOAL_MS * 1e3 / ISSUE_HELLO_US
"""The issue's 4 ms a trade in hello-world requests of that machine (53.6): the goal on a machine of another speed,
whose own hello world is measured in the same run."""
HELLO_ROUNDS = 2
ROUNDS = 3
"""The closed loop runs this many times, each round into new portfolios, and the round with the least CPU a trade
is reported: other work on a shared host only ever adds CPU (the same best-of rule as gateway_read's wrk rounds)."""


@dataclass
class Poster:
    """One user with a portfolio and an HTTP client of its own."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    portfolio_id: str
    hours: list[int]
    """The candle hours this user's trades take in turn (each user its own slice: a trade per hour)."""
    posted: int = 0

    async def new_portfolio(self, name: str) -> None:
        created = await self.client.post("/v1/portfolios", json={"name": name}, headers=self.headers)
        created.raise_for_status()
        self.portfolio_id = created.json()["portfolio_id"]

    async def post_one(self, priced: dict[str, "asyncio.Future[float]"]) -> float:
        """POST a trade at an hour of its own; return the seconds until it is priced."""
        at = datetime.fromtimestamp(self.hours[self.posted % len(self.hours)], UTC)
        self.posted += 1
        started = time.perf_counter()
        answer = await self.client.post(f"/v1/portfolios/{self.portfolio_id}/transactions", headers=self.headers,
                                        json={"side": "buy", "amount_btc": "0.01", "at": at.isoformat()})
        answer.raise_for_status()
        done = priced.setdefault(answer.json()["transaction_id"], asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(done, 60) - started


async def sign_up(base: str, index: int, hours: list[int]) -> Poster:
    client = httpx.AsyncClient(base_url=base, timeout=60)
    credentials = {"email": f"bench-record-{index}@example.com", "password": "a long bench passphrase"}
    (await client.post("/v1/auth/register", json=credentials)).raise_for_status()
    token = (await client.post("/v1/auth/login", json=credentials)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post("/v1/portfolios", json={"name": f"record {index}"}, headers=headers)
    return Poster(client, headers, created.json()["portfolio_id"], hours)


def meter_for(stack: Launcher) -> CpuMeter:
    databases = [url.rsplit("/", 1)[1] for url in stack.database_urls.values()]
    return CpuMeter({**{name: fixed(stack.services[name].process.pid)  # type: ignore[union-attr]
                        for name in SERVICES if name in stack.services},
                     "postgres": postgres_backends(databases), "rabbitmq": rabbitmq_node()})


@dataclass
class Run:
    trades: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]
    idle_rate: float = 0.0
    """CPU seconds a second the shared RabbitMQ node spent just before the run, without our load."""

    @property
    def rate(self) -> float:
        return self.trades / self.seconds

    def cpu_ms_per_trade(self) -> dict[str, float]:
        return {name: used * 1000 / self.trades for name, used in self.cpu.items()}


async def closed_loop(stack: Launcher, posters: list[Poster], per_user: int,
                      priced: dict[str, "asyncio.Future[float]"]) -> Run:
    latencies: list[float] = []

    async def user(poster: Poster) -> None:
        for _ in range(per_user):
            latencies.append(await poster.post_one(priced))

    with meter_for(stack) as cpu:
        started = time.perf_counter()
        await asyncio.gather(*(user(p) for p in posters))
        seconds = time.perf_counter() - started
    return Run(len(latencies), seconds, latencies, cpu.seconds())


async def paced(stack: Launcher, posters: list[Poster], rate: float, seconds: float,
                priced: dict[str, "asyncio.Future[float]"]) -> Run:
    """Open loop: one trade every 1/rate s, round-robin over the users, whatever the answers' pace."""
    latencies: list[float] = []
    total = int(rate * seconds)
    tasks = []

    async def one(poster: Poster) -> None:
        latencies.append(await poster.post_one(priced))

    with meter_for(stack) as cpu:
        started = time.perf_counter()
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(posters[n % len(posters)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return Run(total, elapsed, latencies, cpu.seconds())


SHARED = "rabbitmq"
"""The RabbitMQ node may serve others on this machine (other vhosts): its CPU is counted net of its idle rate."""


async def net_of_idle(stack: Launcher, run: Callable[[], Awaitable[Run]]) -> Run:
    """Run, with the shared node's CPU net of what it spent, idle for us, in the 5 s before."""
    with meter_for(stack) as idle:
        await asyncio.sleep(5)
    measured = await run()
    idle_rate = idle.seconds()[SHARED] / 5
    measured.cpu[SHARED] = max(0.0, measured.cpu[SHARED] - idle_rate * measured.seconds)
    measured.idle_rate = idle_rate
    return measured


async def measure(stack: Launcher, per_user: int) -> tuple[Run, Run]:
    priced: dict[str, asyncio.Future[float]] = {}
    watcher = await watch_priced(stack.rabbit_url, priced)
    hours = market_hours(hourly_opens())
    share = len(hours) // USERS
    posters = [await sign_up(stack.services["gateway"].url, i, hours[i * share:(i + 1) * share]) for i in range(USERS)]
    try:
        for poster in posters:  # warm every connection and cache before measuring
            await poster.post_one(priced)
        rounds = []
        for number in range(ROUNDS):
            if number:  # each round into new portfolios, so that the rounds differ only by the host's noise
                await asyncio.gather(*(poster.new_portfolio(f"record {i} round {number + 1}")
                                       for i, poster in enumerate(posters)))
            rounds.append(await net_of_idle(stack, lambda: closed_loop(stack, posters, per_user, priced)))
        for number, run in enumerate(rounds, start=1):
            print(f"closed loop round {number}: {sum(run.cpu_ms_per_trade().values()):.2f} ms a trade, "
                  f"{run.rate:.0f} trades/s", flush=True)
        peak = min(rounds, key=lambda run: sum(run.cpu_ms_per_trade().values()))
        half = await net_of_idle(stack, lambda: paced(stack, posters, peak.rate / 2, max(10.0, peak.seconds), priced))
        return peak, half
    finally:
        await asyncio.gather(*(p.client.aclose() for p in posters))
        await watcher.close()


def hello_cpu_us() -> float:
    """A FastAPI hello world request's CPU on this machine now (wrk -c32, the least of a few rounds)."""
    with hello_world() as (url, pid):
        return min(wrk(url, None, pid).cpu_us_per_request for _ in range(HELLO_ROUNDS))


def print_cpu(label: str, run: Run) -> None:
    per_trade = run.cpu_ms_per_trade()
    print(f"\n{label}: {run.trades} trades in {run.seconds:.1f} s = {run.rate:.0f} trades/s; CPU per trade (ms), "
          f"{SHARED} net of its idle {run.idle_rate * 1000:.0f} ms/s:")
    for name, ms in sorted(per_trade.items(), key=lambda item: -item[1]):
        print(f"  {name:<10} {ms:6.2f}")
    print(f"  {'total':<10} {sum(per_trade.values()):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades-per-user", type=int, default=40)
    per_user = parser.parse_args().trades_per_user
    load = os.getloadavg()
    hello_before = hello_cpu_us()
    with running_stack(*SERVICES, env=STACK_ENV) as stack:
        peak, half = asyncio.run(measure(stack, per_user))
        baseline = asyncio.run(seed_design_baseline(stack.services["price"].url))
    hello_us = min(hello_before, hello_cpu_us())
    print_cpu("closed loop, 32 users", peak)
    print_cpu("paced at half the peak", half)
    cpu_ms = sum(peak.cpu_ms_per_trade().values())
    in_requests = cpu_ms * 1e3 / hello_us
    print(f"\na FastAPI hello world request: {hello_us:.0f} µs of CPU here (the issue's machine: {ISSUE_HELLO_US:.0f} µs);"
          f" a trade costs {in_requests:.1f} of them (goal ≤ {GOAL_REQUESTS:.1f}, the issue's 4 ms there)")
    p99, p50 = percentile(half.latencies, 0.99) * 1000, percentile(half.latencies, 0.5) * 1000
    breakdown = ", ".join(f"{name} {ms:.2f}" for name, ms in peak.cpu_ms_per_trade().items())
    write_results("record_cpu", [
        Figure(f"system CPU per trade, {USERS} users (closed loop)", cpu_ms, "ms",
               "before (1e85d9e, this bench)", BEFORE_CPU_MS, f"≤ {CPU_GOAL_MS:g} ms on this machine",
               cpu_ms <= CPU_GOAL_MS),
        Figure("the same in FastAPI hello-world requests of CPU (this run)", in_requests, "requests",
               "the issue's 8.9 ms on its machine", ISSUE_BEFORE_REQUESTS,
               f"≤ {GOAL_REQUESTS:.1f} (the issue's 4 ms)", in_requests <= GOAL_REQUESTS),
        Figure("FastAPI hello world request, CPU (this run)", hello_us, "µs", "the issue's machine",
               ISSUE_HELLO_US, "report", True),
        Figure(f"POST → priced, {USERS} users (closed loop)", peak.rate, "tx/s",
               "seed design: sync HTTP price call per tx", baseline, "", True),
        Figure(f"POST → priced p99 at half the peak ({half.rate:.0f} tx/s, paced)", p99, "ms", "p50", p50,
               f"< {P99_GOAL_MS:g} ms", p99 < P99_GOAL_MS),
    ], f"CPU ms per trade by process: {breakdown}; load average before the run "
       f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; the shared RabbitMQ node net of its idle rate just before "
       f"({peak.idle_rate * 1000:.0f} ms/s); the bench client's own CPU is not counted; best of {ROUNDS} closed-loop "
       "rounds. Before the replica of hourly opens (8bbd037, one round, quiet machine, 2026-12-06): 7.55 ms a trade "
       "at 184 trades/s (portfolio 3.27, Postgres 1.41, RabbitMQ 1.25, gateway 1.14, price 0.47). Before the lean "
       "command queue, the cash-flow memo and one write lane (0098450), run alternately with them on 2026-12-07: "
       "9.72 ms (52.3 hello-world requests; portfolio 4.70, gateway 2.05, Postgres 1.58, RabbitMQ 1.38) against 8.58 "
       "ms (48.2; portfolio 3.97, gateway 2.12, RabbitMQ 1.49, Postgres 0.94) on a busy host")


if __name__ == "__main__":
    main()
