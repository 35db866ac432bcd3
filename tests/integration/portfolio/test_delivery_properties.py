"""Hypothesis: price answers delivered in any order, any of them twice, leave the same projections."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, RecordTransaction
from contracts.prices import PriceResolved
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio import handlers
from portfolio.market_data import PriceSource
from portfolio.messaging import WriteBatcher
from portfolio.replay import differences, rebuild
from portfolio.service import PortfolioService

TRADES = [("buy", "1.0", "41000"), ("buy", "0.5", "39000.5"), ("sell", "0.7", "45000"), ("buy", "0.25", "52000"),
          ("sell", "0.3", "61000.25")]
START = datetime(2024, 2, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
async def delivery_database(make_database) -> str:
    return (await make_database("portfolio")).replace("+asyncpg", "")


async def portfolio_with_answers(service: PortfolioService) -> tuple[str, list[PriceResolved]]:
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id="delivery", name="p"))
    portfolio_id = reply.result["portfolio_id"]
    answers = []
    for n, (side, amount, price) in enumerate(TRADES):
        at = START + timedelta(days=n, minutes=30)
        reply, outgoing = await handlers.handle_command(service, RecordTransaction(
            owner_id="delivery", portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount), at=at))
        request = next(m for m in outgoing if m.routing_key == "price.requested")
        answers.append(PriceResolved(transaction_id=reply.result["transaction_id"], portfolio_id=portfolio_id, at=at,
                                     hour=int(at.timestamp()) // 3600 * 3600, price_usd=Decimal(price),
                                     source="test", **request.caused()))
    return portfolio_id, answers


async def settled(service: PortfolioService, portfolio_id: str) -> tuple[dict, list]:
    row = await service.pool.fetchrow("SELECT metrics::text FROM portfolios WHERE portfolio_id = $1", portfolio_id)
    outcomes = await service.pool.fetch(
        "SELECT amount_btc, price_usd, status, cost_usd, proceeds_usd, cost_basis_sold_usd, realized_pnl_usd "
        "FROM transactions WHERE portfolio_id = $1 ORDER BY sequence", portfolio_id)
    return row[0], [tuple(r) for r in outcomes]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def deliver_in_windows(service: PortfolioService, portfolio_id: str, deliveries: list[PriceResolved],
                             windows: list[int]) -> None:
    """Through the service's write batcher: each window's answers come 0.01 s apart (on a fake clock), then a
    pause closes it; a window's first answer after a pause goes alone, and of the others the back-dated ones (earlier
    than an answer before them) wait and run in one batch, while those extending the timeline go straight on."""
    clock = Clock()
    writer = WriteBatcher(service, None, linger_seconds=0.1, coalesce_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    running = asyncio.create_task(writer.run())
    submitted = []
    latest = None
    while deliveries:
        size = windows.pop(0) if windows else len(deliveries)
        waiting = []
        for index, answer in enumerate(deliveries[:size]):
            back_dated = latest is not None and answer.at < latest
            if index and back_dated:
                waiting.append(answer)
            latest = latest if back_dated else answer.at
            submitted.append(asyncio.create_task(writer.submit(answer)))
            await asyncio.sleep(0)
            clock.now += 0.01
        held = writer.parked[portfolio_id].items if portfolio_id in writer.parked else []
        assert [answer for answer, _ in held] == waiting
        deliveries = deliveries[size:]
        clock.now += 5.0
        writer.due(portfolio_id)
    results = await asyncio.gather(*submitted)
    running.cancel()
    assert all(isinstance(result, handlers.Handled) for result in results)


async def deliver_and_compare(url: str, order: list[int], duplicates: list[int],
                              batch_sizes: list[int] | None = None, windows: list[int] | None = None) -> None:
    """Deliver the answers one by one, or (with `batch_sizes`) in batches the way the service's writer runs them,
    or (with `windows`) through the writer itself, which holds answers that follow each other in windows."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    service = PortfolioService(pool, PriceSource(None))
    try:
        canonical_id, canonical_answers = await portfolio_with_answers(service)
        for answer in canonical_answers:
            await handlers.on_price_answer(service, answer)
        shuffled_id, answers = await portfolio_with_answers(service)
        deliveries = [answers[index] for index in [*order, *duplicates]]
        if windows is not None:
            await deliver_in_windows(service, shuffled_id, deliveries, windows)
        elif batch_sizes is None:
            for answer in deliveries:
                await handlers.on_price_answer(service, answer)
        while batch_sizes is not None and deliveries:
            size = batch_sizes.pop(0) if batch_sizes else len(deliveries)
            results = await handlers.run_batch(service, deliveries[:size])
            assert not [r for r in results if isinstance(r, Exception)]
            deliveries = deliveries[size:]
        expected_metrics, expected_rows = await settled(service, canonical_id)
        got_metrics, got_rows = await settled(service, shuffled_id)
        assert got_rows == expected_rows
        assert got_metrics == expected_metrics
        assert await differences(pool, await rebuild(service, shuffled_id), shuffled_id) == []
    finally:
        await pool.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.permutations(range(len(TRADES))),
       duplicates=st.lists(st.integers(min_value=0, max_value=len(TRADES) - 1), max_size=4))
def test_reordered_and_duplicated_price_answers_change_nothing(delivery_database, order, duplicates) -> None:
    asyncio.run(deliver_and_compare(delivery_database, list(order), duplicates))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.permutations(range(len(TRADES))),
       duplicates=st.lists(st.integers(min_value=0, max_value=len(TRADES) - 1), max_size=4),
       batch_sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5))
def test_price_answers_in_batches_reordered_and_duplicated_change_nothing(delivery_database, order, duplicates,
                                                                           batch_sizes) -> None:
    """The same, through the batched writer: a batch may hold several answers of one portfolio, or one twice."""
    asyncio.run(deliver_and_compare(delivery_database, list(order), duplicates, list(batch_sizes)))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.permutations(range(len(TRADES))),
       duplicates=st.lists(st.integers(min_value=0, max_value=len(TRADES) - 1), max_size=4),
       windows=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5))
def test_price_answers_held_in_windows_reordered_and_duplicated_change_nothing(delivery_database, order, duplicates,
                                                                                windows) -> None:
    """The same, through the writer's windows: answers that follow each other wait and are folded once."""
    asyncio.run(deliver_and_compare(delivery_database, list(order), duplicates, windows=list(windows)))
