"""CryptoCompare hourly history (histohour): pages backwards, retries 429 and errors, skips all-zero rows."""

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from price.domain import CandleRow, is_all_zero

PAGE_LIMIT = 2000
log = structlog.get_logger()


class ProviderUnavailable(Exception):
    """The provider could not be reached or kept failing after retries."""


class ProviderRefused(Exception):
    """The provider answered "Response": "Error"; its message says why."""


class _Retryable(Exception):
    pass


class CryptoCompareProvider:
    name = "cryptocompare"

    def __init__(
        self, base_url: str, api_key: str | None = None, *, attempts: int = 4, backoff_seconds: float = 0.5,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds)
        self._api_key = api_key
        self._attempts = attempts
        self._backoff = backoff_seconds

    async def close(self) -> None:
        await self._client.aclose()

    async def _get_page(self, to_ts: int, limit: int) -> dict:  # type: ignore[type-arg]
        params: dict[str, str | int] = {"fsym": "BTC", "tsym": "USD", "limit": limit, "toTs": to_ts}
        if self._api_key:
            params["api_key"] = self._api_key
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self._backoff, max=30),
                retry=retry_if_exception_type(_Retryable),
                reraise=True,
            ):
                with attempt:
                    try:
                        response = await self._client.get("/data/v2/histohour", params=params)
                    except httpx.HTTPError as error:
                        raise _Retryable(f"request failed: {error}") from error
                    if response.status_code == 429 or response.status_code >= 500:
                        retry_after = response.headers.get("Retry-After")
                        log.warning("provider_retry", status=response.status_code, retry_after=retry_after)
                        raise _Retryable(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise ProviderRefused(f"HTTP {response.status_code}: {response.text[:200]}")
                    body = json.loads(response.content, parse_float=Decimal)
        except _Retryable as error:
            raise ProviderUnavailable(f"CryptoCompare kept failing after {self._attempts} attempts: {error}") from error
        if body.get("Response") == "Error":
            raise ProviderRefused(body.get("Message") or "CryptoCompare answered Error")
        return body["Data"]  # type: ignore[no-any-return]

    async def page(self, to_ts: int, limit: int = PAGE_LIMIT) -> tuple[int, list[CandleRow], bool]:
        """One page ending at `to_ts`: (TimeFrom, real candles oldest first, whether it reached all-zero rows)."""
        data = await self._get_page(to_ts, limit)
        rows = [
            CandleRow(
                hour=int(item["time"]),
                open=Decimal(item["open"]),
                high=Decimal(item["high"]),
                low=Decimal(item["low"]),
                close=Decimal(item["close"]),
                volume=Decimal(item["volumefrom"]),
            )
            for item in data.get("Data", [])
        ]
        real = [r for r in rows if not is_all_zero(r)]
        return int(data.get("TimeFrom", to_ts)), real, len(real) < len(rows)

    async def history(self, since: int, until: int) -> AsyncIterator[list[CandleRow]]:
        """Pages from `until` backwards to `since`, stopping at the first all-zero rows (before the pair existed)."""
        to_ts = until
        while to_ts >= since:
            time_from, rows, reached_start = await self.page(to_ts)
            rows = [r for r in rows if since <= r.hour <= until]
            if rows:
                yield rows
            if reached_start or not rows or time_from <= since:
                return
            to_ts = time_from - 3600
