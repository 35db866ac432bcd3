"""CryptoCompare hourly history (histohour): pages backwards, retries 429, errors and unreadable answers, skips
all-zero rows."""

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

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


class UnreadableAnswer(ValueError):
    """The provider answered, but not in the histohour shape (not JSON, no `Data`, a price that is not a number)."""


class _Retryable(Exception):
    pass


PRICE_FIELDS = ("open", "high", "low", "close", "volumefrom")


def _price(item: dict[str, Any], key: str) -> Decimal:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise UnreadableAnswer(f"row {item.get('time')!r} has {key} {value!r}, not a number")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise UnreadableAnswer(f"row {item.get('time')!r} has {key} {value!r}, not a finite number >= 0")
    return number


def _candle_row(item: Any) -> CandleRow:
    if not isinstance(item, dict):
        raise UnreadableAnswer(f"a row is {item!r}, not an object")
    hour = item.get("time")
    if isinstance(hour, bool) or not isinstance(hour, int) or hour % 3600:
        raise UnreadableAnswer(f"a row has time {hour!r}, not the start of an hour")
    open_, high, low, close, volume = (_price(item, key) for key in PRICE_FIELDS)
    return CandleRow(hour=hour, open=open_, high=high, low=low, close=close, volume=volume)


def read_histohour(content: bytes, to_ts: int) -> tuple[int, list[CandleRow]]:
    """(TimeFrom, every row oldest first) of a histohour answer; ProviderRefused for "Response": "Error",
    UnreadableAnswer for anything else that is not a page of candles."""
    try:
        body = json.loads(content, parse_float=Decimal)
    except ValueError as error:
        raise UnreadableAnswer(f"the answer is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise UnreadableAnswer("the answer is not a JSON object")
    if body.get("Response") == "Error":
        raise ProviderRefused(body.get("Message") or "CryptoCompare answered Error")
    data = body.get("Data")
    if not isinstance(data, dict) or not isinstance(data.get("Data"), list):
        raise UnreadableAnswer("the answer has no Data.Data list of candles")
    time_from = data.get("TimeFrom", to_ts)
    if isinstance(time_from, bool) or not isinstance(time_from, int):
        raise UnreadableAnswer(f"the answer has TimeFrom {time_from!r}, not unix seconds")
    return time_from, [_candle_row(item) for item in data["Data"]]


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

    async def _get_page(self, to_ts: int, limit: int) -> tuple[int, list[CandleRow]]:
        """One histohour page, read; a 429, a 5xx, a failed request or an unreadable answer is retried."""
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
                    try:
                        return read_histohour(response.content, to_ts)
                    except UnreadableAnswer as error:
                        log.warning("provider_unreadable", reason=str(error))
                        raise _Retryable(f"unreadable answer: {error}") from error
        except _Retryable as error:
            raise ProviderUnavailable(f"CryptoCompare kept failing after {self._attempts} attempts: {error}") from error
        raise AssertionError("unreachable: tenacity either returns or reraises")

    async def page(self, to_ts: int, limit: int = PAGE_LIMIT) -> tuple[int, list[CandleRow], bool]:
        """One page ending at `to_ts`: (TimeFrom, real candles oldest first, whether it reached all-zero rows)."""
        time_from, rows = await self._get_page(to_ts, limit)
        real = [r for r in rows if not is_all_zero(r)]
        return time_from, real, len(real) < len(rows)

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
