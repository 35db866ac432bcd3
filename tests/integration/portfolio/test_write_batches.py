"""The batched writer: messages share a transaction, yet a refused or failing message undoes only its own work."""

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, RecordTransaction, RenamePortfolio
from contracts.prices import PriceRequested, PriceResolved
from portfolio import handlers, price_events
from portfolio.handlers import Handled
from portfolio.market_data import PriceSource
from portfolio.service import PortfolioService

from contracts import ErrorCode

OWNER = "owner-batches"
AT = datetime(2024, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
async def service(make_database):
    url = (await make_database("portfolio")).replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    yield PortfolioService(pool, PriceSource(None))
    await pool.close()


def buy(portfolio_id: str, amount: str, price: str = "40000") -> RecordTransaction:
    return RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal(amount), at=AT,
                             price_usd=Decimal(price))


async def test_one_batch_commits_the_good_messages_and_isolates_the_refused_and_the_failing(service, monkeypatch):
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id=OWNER, name="Batched"))
    portfolio_id = reply.result["portfolio_id"]
    first, second = buy(portfolio_id, "1"), buy(portfolio_id, "0.5", "41000")
    oversized = RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell", amount_btc=Decimal("9"),
                                  at=AT, price_usd=Decimal("50000"))
    rename = RenamePortfolio(owner_id=OWNER, portfolio_id=portfolio_id, name="Renamed")

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug in one handler")

    monkeypatch.setitem(handlers.WRITES, RenamePortfolio, broken)
    results = await handlers.run_batch(service, [first, oversized, rename, second, first])

    assert isinstance(results[0], Handled) and results[0].reply.ok
    assert isinstance(results[1], Handled) and results[1].reply.error.code == ErrorCode.INSUFFICIENT_HOLDINGS
    assert isinstance(results[2], RuntimeError)
    assert isinstance(results[3], Handled) and results[3].reply.ok
    assert results[4].reply.to_json() == results[0].reply.to_json()  # a duplicate in the same batch: same reply

    pool = service.pool
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE portfolio_id = $1", portfolio_id) == 2
    assert [r[0] for r in await pool.fetch("SELECT type FROM events ORDER BY position")] == [
        "PortfolioCreated", "TransactionRecorded", "TransactionRecorded"]
    assert await pool.fetchval("SELECT array_agg(position ORDER BY position) FROM events") == [1, 2, 3]
    claimed = {r[0] for r in await pool.fetch("SELECT message_id FROM inbox")}
    assert {first.message_id, oversized.message_id, second.message_id} <= claimed
    assert rename.message_id not in claimed  # given back: its redelivery runs it again
    metrics = await pool.fetchval("SELECT metrics->>'holdings_btc' FROM portfolios WHERE portfolio_id = $1",
                                  portfolio_id)
    assert Decimal(metrics) == Decimal("1.5")

    monkeypatch.undo()
    redelivered = await handlers.run_batch(service, [rename])
    assert isinstance(redelivered[0], Handled) and redelivered[0].reply.result["name"] == "Renamed"


async def test_price_answers_of_one_portfolio_in_a_batch_are_applied_in_one_fold(service, monkeypatch):
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id=OWNER, name="Answers"))
    portfolio_id = reply.result["portfolio_id"]
    answers = []
    for hours in (5, 1, 3):  # recorded late to early: every answer lands before the ones already priced
        at = AT.replace(hour=hours)
        _, outgoing = await handlers.handle_command(service, RecordTransaction(
            owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal("1"), at=at))
        request = next(m for m in outgoing if isinstance(m, PriceRequested))
        answers.append(PriceResolved(transaction_id=request.transaction_id, portfolio_id=portfolio_id, at=at,
                                     hour=int(at.timestamp()) // 3600 * 3600, price_usd=Decimal(40000 + hours),
                                     source="test", **request.caused()))
    folds = []
    real_refresh = price_events.refresh_metrics

    async def counted_refresh(*args, **kwargs):
        folds.append(kwargs)
        return await real_refresh(*args, **kwargs)

    monkeypatch.setattr(price_events, "refresh_metrics", counted_refresh)
    results = await handlers.run_batch(service, [*answers, answers[1]])
    assert len(folds) == 1  # one fold for the three answers (and the duplicate)
    assert [len(r.outgoing) for r in results] == [1, 0, 0, 0]  # one portfolio.updated for the batch
    metrics = await service.pool.fetchrow(
        "SELECT metrics->>'holdings_btc' AS held, metrics->>'invested_usd' AS invested, "
        "metrics->>'pending_count' AS pending FROM portfolios WHERE portfolio_id = $1", portfolio_id)
    assert (Decimal(metrics["held"]), Decimal(metrics["invested"]), metrics["pending"]) == \
        (Decimal(3), Decimal(120009), "0")
    assert await service.pool.fetchval("SELECT count(*) FROM events WHERE type = 'TransactionPriced'") == 3
