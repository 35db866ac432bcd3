"""One function per message or query: load, apply the price rule, store, answer."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from contracts.envelope import Message
from contracts.prices import (
    CANDLE_OPEN,
    Candle,
    LatestPrice,
    LatestPriceRequested,
    PriceAt,
    PriceAtRequested,
    PriceRange,
    PriceRangeRequested,
    PriceRequested,
    PriceResolved,
    PriceTicked,
    PriceUnavailable,
    ResolvedPrice,
    UnavailablePrice,
    UnavailableReason,
)

from contracts import ErrorCode, Reply
from price.domain import CandleRow, PriceDecision, decide_price, known_at
from price.domain.rule import Verdict
from price.provider import CryptoCompareProvider, ProviderRefused, ProviderUnavailable
from price.repository import CandleStore

log = structlog.get_logger()
GAP_FILL_HOURS = 48


@dataclass
class PriceService:
    """What the handlers need: the candle store, the provider and a clock."""

    store: CandleStore
    provider: CryptoCompareProvider | None
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())


def tick_for(candle: CandleRow) -> PriceTicked:
    """price.ticked: the close of the newest finished candle, as of the end of its hour (never in the future,
    since only finished candles tick)."""
    return PriceTicked(hour=candle.hour, price_usd=candle.close, open_usd=candle.open,
                       as_of=datetime.fromtimestamp(candle.hour + 3600, UTC))


def candle_view(row: CandleRow) -> Candle:
    return Candle(hour=row.hour, open=row.open, high=row.high, low=row.low, close=row.close, volume=row.volume)


async def fill_gap(service: PriceService, hour: int) -> CandleRow | None:
    """Fetch the hours around a missing one from the provider and store them (the hour still trading as
    provisional: its open answers now, its close is replaced when the hour ends)."""
    if service.provider is None:
        raise ProviderUnavailable("no price provider is configured")
    now = service.now()
    to_ts = min(hour + GAP_FILL_HOURS * 3600, now - now % 3600)
    _, fetched, _ = await service.provider.page(to_ts, limit=GAP_FILL_HOURS * 2)
    rows = known_at(fetched, now)
    if rows:
        await service.store.store(rows, service.provider.name, tick=tick_for)
        log.info("gap_filled", hour=hour, candles=len(rows))
    return await service.store.candle(hour)


async def verdict_for(service: PriceService, at: int) -> Verdict:
    hour = at - at % 3600
    first_hour, _ = await service.store.bounds()
    verdict = decide_price(at, service.now(), first_hour, await service.store.candle(hour))
    if verdict.decision is PriceDecision.FETCH:
        candle = await fill_gap(service, hour)
        if candle is None:
            raise ProviderUnavailable(f"the provider has no candle for hour {hour}")
        return Verdict(PriceDecision.RESOLVED, hour, candle)
    return verdict


UNAVAILABLE_SENTENCES = {
    PriceDecision.BEFORE_DATA: "{when} is before the first stored BTC-USD candle, so it has no price.",
    PriceDecision.IN_FUTURE: "{when} is in the future, so it has no price yet.",
}


def _when(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def answer_price_request(service: PriceService, request: PriceRequested) -> Message:
    """price.requested → price.resolved, or price.unavailable with a reason; a batch request (schema 2) gets one
    price.resolved (schema 2) with every trade's answer."""
    if request.schema_version == 2:
        return await answer_price_batch(service, request)
    at = int(request.at.timestamp())  # type: ignore[union-attr]
    common = {"transaction_id": request.transaction_id, "portfolio_id": request.portfolio_id, "at": request.at,
              **request.caused()}
    try:
        verdict = await verdict_for(service, at)
    except (ProviderUnavailable, ProviderRefused) as error:
        return PriceUnavailable(reason=UnavailableReason.PROVIDER_UNAVAILABLE,
                                detail=provider_failed(at, error), **common)
    if verdict.candle is None:
        return PriceUnavailable(reason=UnavailableReason(verdict.decision.value),
                                detail=UNAVAILABLE_SENTENCES[verdict.decision].format(when=_when(at)), **common)
    return PriceResolved(hour=verdict.hour, price_usd=verdict.candle.open, source=CANDLE_OPEN, **common)


def provider_failed(at: int, error: Exception) -> str:
    return f"No stored price for {_when(at)} and the provider failed: {error}"


async def answer_price_batch(service: PriceService, request: PriceRequested) -> PriceResolved:
    """Every trade of a batch from one query of its distinct hours; hours missing inside the data are fetched
    from the provider (each fetch brings the hours around it too)."""
    wanted = request.wanted()
    hours = sorted({int(item.at.timestamp()) // 3600 * 3600 for item in wanted})
    candles = await service.store.candles(hours)
    first_hour, _ = await service.store.bounds()
    now = service.now()
    failures: dict[int, Exception] = {}
    resolved: list[ResolvedPrice] = []
    unavailable: list[UnavailablePrice] = []
    for item in wanted:
        at = int(item.at.timestamp())
        verdict = decide_price(at, now, first_hour, candles.get(at - at % 3600))
        if verdict.decision is PriceDecision.FETCH and verdict.hour not in failures:
            try:
                candle = await fill_gap(service, verdict.hour)
                if candle is None:
                    raise ProviderUnavailable(f"the provider has no candle for hour {verdict.hour}")
                candles.update(await service.store.candles([h for h in hours if h not in candles]))
                verdict = Verdict(PriceDecision.RESOLVED, verdict.hour, candle)
            except (ProviderUnavailable, ProviderRefused) as error:
                failures[verdict.hour] = error
        common = {"request_id": item.request_id, "transaction_id": item.transaction_id, "at": item.at,
                  "portfolio_id": item.portfolio_id}
        if verdict.candle is not None:
            resolved.append(ResolvedPrice(hour=verdict.hour, price_usd=verdict.candle.open, source=CANDLE_OPEN,
                                          **common))
        elif verdict.hour in failures:
            unavailable.append(UnavailablePrice(reason=UnavailableReason.PROVIDER_UNAVAILABLE,
                                                detail=provider_failed(at, failures[verdict.hour]), **common))
        else:
            unavailable.append(UnavailablePrice(
                reason=UnavailableReason(verdict.decision.value),
                detail=UNAVAILABLE_SENTENCES[verdict.decision].format(when=_when(at)), **common))
    return PriceResolved(schema_version=2, portfolio_id=request.portfolio_id, resolved=resolved,
                         unavailable=unavailable, **request.caused())


async def answer_price_at(service: PriceService, query: PriceAtRequested) -> Reply:
    try:
        verdict = await verdict_for(service, query.at)
    except (ProviderUnavailable, ProviderRefused) as error:
        return Reply.failure(query, ErrorCode.UNAVAILABLE, f"No stored price for {_when(query.at)} and the provider "
                                                           f"failed: {error}")
    if verdict.candle is None:
        return Reply.failure(query, ErrorCode.NOT_FOUND,
                             UNAVAILABLE_SENTENCES[verdict.decision].format(when=_when(query.at)),
                             {"reason": verdict.decision.value})
    return Reply.success(query, PriceAt(at=query.at, hour=verdict.hour, price_usd=verdict.candle.open,
                                        source=CANDLE_OPEN, candle=candle_view(verdict.candle)))


async def answer_price_range(service: PriceService, query: PriceRangeRequested) -> Reply:
    if (query.end - query.start) // 3600 > PriceRangeRequested.max_hours:
        return Reply.failure(query, ErrorCode.VALIDATION, "That range is too long.")
    rows = await service.store.between(query.start - query.start % 3600, query.end, query.step)
    return Reply.success(query, PriceRange(start=query.start, end=query.end, step=query.step,
                                           candles=[candle_view(r) for r in rows]))


async def answer_latest(service: PriceService, query: LatestPriceRequested) -> Reply:
    latest = await service.store.latest()
    if latest is None:
        return Reply.failure(query, ErrorCode.NOT_FOUND, "No BTC-USD candles are stored yet.")
    tick = tick_for(latest)
    return Reply.success(query, LatestPrice(hour=latest.hour, price_usd=latest.close, as_of=tick.as_of,
                                            candle=candle_view(latest)))


async def sync_newest(service: PriceService) -> int:
    """Fetch the candles after the newest stored one, up to the last complete hour; returns how many were new."""
    if service.provider is None:
        return 0
    _, newest = await service.store.bounds()
    now = service.now()
    until = now - now % 3600 - 3600
    since = (newest + 3600) if newest is not None else until - 2000 * 3600
    inserted = 0
    async for page in service.provider.history(since, until):
        rows = known_at(page, service.now())
        inserted += (await service.store.store(rows, service.provider.name, tick=tick_for)).inserted
    return inserted
