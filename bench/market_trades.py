"""Shared pieces of the pricing benchmarks: the bundled 2024 candles, random trade files, and a gateway user who
imports them and waits until every trade is priced."""

import asyncio
import csv
import gzip
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from bench.common import BUNDLED_CANDLES

SATOSHI = Decimal("0.00000001")
FIRST_2024_HOUR = 1704067200
PASSWORD = "a long bench passphrase"


def hourly_opens() -> dict[int, Decimal]:
    """price_at for every stored hour: the open of the candle that starts then (SPEC, Prices)."""
    with gzip.open(BUNDLED_CANDLES, "rt", newline="") as lines:
        return {int(row["unix"]): Decimal(row["open"]) for row in csv.DictReader(lines)}


@dataclass(frozen=True)
class Trade:
    side: str
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal


def random_trades(count: int, rng: random.Random, hours: list[int]) -> list[Trade]:
    """`count` buys and sells at random 2024 instants that have a candle, in time order; a sell never takes more
    than is held at its time (amounts are whole satoshis, so no float ever touches them)."""
    instants = sorted(rng.choice(hours) + rng.randrange(3600) for _ in range(count))
    trades, held = [], 0
    for instant in instants:
        selling = held >= 20_000 and rng.random() < 0.3
        amount = rng.randint(10_000, held // 2) if selling else rng.randint(100_000, 5_000_000)
        held += -amount if selling else amount
        trades.append(Trade("sell" if selling else "buy", Decimal(amount) * SATOSHI,
                            datetime.fromtimestamp(instant, UTC), Decimal(rng.randint(0, 500)) / 100))
    return trades


def trades_csv(trades: list[Trade], typed_prices: dict[int, Decimal] | None = None) -> str:
    """The generic import format; with `typed_prices`, each row carries price_at(at) as a typed price (the same
    figure the price service would give, so both imports end with the same metrics)."""
    lines = ["side,amount_btc,at,fee_usd,price_usd,note"]
    for trade in trades:
        instant = int(trade.at.timestamp())
        price = "" if typed_prices is None else str(typed_prices[instant - instant % 3600])
        lines.append(f"{trade.side},{trade.amount_btc},{trade.at.isoformat().replace('+00:00', 'Z')},"
                     f"{trade.fee_usd},{price},")
    return "\n".join(lines) + "\n"


def market_hours(opens: dict[int, Decimal]) -> list[int]:
    return sorted(hour for hour in opens if hour >= FIRST_2024_HOUR)


@dataclass
class GatewayUser:
    api: httpx.AsyncClient
    headers: dict[str, str]

    @classmethod
    async def sign_up(cls, api: httpx.AsyncClient, email: str) -> "GatewayUser":
        (await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})).raise_for_status()
        login = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        return cls(api, {"Authorization": f"Bearer {login.json()['access_token']}"})

    async def create_portfolio(self, name: str) -> str:
        response = await self.api.post("/v1/portfolios", json={"name": name}, headers=self.headers)
        response.raise_for_status()
        return str(response.json()["portfolio_id"])

    async def import_csv(self, portfolio_id: str, text: str) -> dict[str, Any]:
        response = await self.api.post(f"/v1/portfolios/{portfolio_id}/transactions/import", headers=self.headers,
                                       files={"file": ("trades.csv", text.encode(), "text/csv")})
        response.raise_for_status()
        report: dict[str, Any] = response.json()
        return report

    async def metrics(self, portfolio_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/portfolios/{portfolio_id}", headers=self.headers)
        response.raise_for_status()
        metrics: dict[str, Any] = response.json()["metrics"]
        return metrics

    async def wait_until_priced(self, portfolio_id: str, transactions: int, timeout: float) -> dict[str, Any]:
        """Poll GET /v1/portfolios/{id} until it holds `transactions` and none is pending; returns its metrics.
        Polls start quick and back off, so a fast import is not rounded up to a long poll interval."""
        deadline, pause = time.monotonic() + timeout, 0.01
        while True:
            metrics = await self.metrics(portfolio_id)
            if metrics["transaction_count"] >= transactions and metrics["pending_count"] == 0:
                if metrics["failed_count"]:
                    raise RuntimeError(f"{metrics['failed_count']} trades failed to be priced")
                return metrics
            if time.monotonic() > deadline:
                raise TimeoutError(f"still {metrics['pending_count']} pending after {timeout:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def import_until_priced(self, portfolio_id: str, text: str, transactions: int, timeout: float
                                  ) -> tuple[float, dict[str, Any]]:
        """Seconds from the upload to the moment no trade of the portfolio is pending, and the final metrics."""
        started = time.perf_counter()
        report = await self.import_csv(portfolio_id, text)
        if report["imported"] != text.count("\n") - 1:
            raise RuntimeError(f"the import saved {report['imported']} rows: {report}")
        metrics = await self.wait_until_priced(portfolio_id, transactions, timeout)
        return time.perf_counter() - started, metrics

    async def post_until_priced(self, portfolio_id: str, trades: list[Trade], transactions: int, timeout: float
                                ) -> tuple[float, dict[str, Any]]:
        """Seconds from the first POST of the trades (one by one, in time order, each answered 202 before the
        next) to the moment no trade of the portfolio is pending, and the final metrics."""
        started = time.perf_counter()
        for trade in trades:
            response = await self.api.post(
                f"/v1/portfolios/{portfolio_id}/transactions", headers=self.headers,
                json={"side": trade.side, "amount_btc": str(trade.amount_btc),
                      "at": trade.at.isoformat().replace("+00:00", "Z"), "fee_usd": str(trade.fee_usd)})
            response.raise_for_status()
        metrics = await self.wait_until_priced(portfolio_id, transactions, timeout)
        return time.perf_counter() - started, metrics
