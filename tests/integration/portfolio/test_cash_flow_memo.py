"""The cash flows remembered after commit (cash_flows.CashFlowMemo): a trade appended to a small portfolio is stored
with its row, figures and metrics in one statement, and every figure (the IRR above all) is what reading the flows
back gives, also across batches, copies and a message undone in its batch."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CreatePortfolio, RecordTransaction
from contracts.prices import Candle, PriceRange
from portfolio import commands, handlers
from portfolio import repository as repo
from portfolio.cash_flows import CashFlowMemo
from portfolio.handlers import Handled
from portfolio.market_data import PriceSource
from portfolio.service import PortfolioService

OWNER = "owner-memo"
START = datetime(2024, 2, 1, 9, tzinfo=UTC)
TRADES = [("buy", "0.5", "42000.17", "3.5"), ("buy", "0.25", "43010", "1"), ("sell", "0.3", "47000.5", "2.25"),
          ("buy", "1.1", "39999.99", "0"), ("sell", "0.05", "52000", "0.75"), ("buy", "0.2", "61000.01", "4")]


AS_OF = START + timedelta(days=30)


class DailyPrices(PriceSource):
    """The price service's ranges: a price that moves from day to day (the midnights every figure folds)."""

    async def range(self, start: int, end: int, step: str) -> PriceRange | None:
        seconds = 3600 if step == "hour" else 86400
        first = -(-start // seconds) * seconds
        return PriceRange(start=start, end=end, step=step, candles=[
            Candle(hour=t, open=price, high=price, low=price, close=price, volume=Decimal(1))
            for t in range(first, end + 1, seconds) if (price := Decimal(40000 + t // 86400 % 17 * 250))])


@pytest.fixture
async def pool(make_database):
    url = (await make_database("portfolio")).replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    await repo.save_market(pool, int(AS_OF.timestamp()) - 3600, Decimal("58123.45"), AS_OF)
    yield pool
    await pool.close()


def copy_of(pool: asyncpg.Pool, remembers: bool = True) -> PortfolioService:
    """A service copy over the shared database; one that remembers nothing reads every flow back."""
    service = PortfolioService(pool, DailyPrices(None))
    if not remembers:
        service.cash_flows = CashFlowMemo(size=0)
    return service


def trade(portfolio_id: str, number: int, note: str | None = None) -> RecordTransaction:
    side, amount, price, fee = TRADES[number]
    return RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount),
                             at=START + timedelta(days=3 * number), price_usd=Decimal(price), fee_usd=Decimal(fee),
                             note=note)


async def new_portfolio(service: PortfolioService, name: str) -> str:
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id=OWNER, name=name))
    return reply.result["portfolio_id"]  # type: ignore[no-any-return]


async def stored(pool: asyncpg.Pool, portfolio_id: str) -> tuple[dict[str, object], list[tuple[object, ...]]]:
    metrics = json.loads(await pool.fetchval("SELECT metrics FROM portfolios WHERE portfolio_id = $1", portfolio_id))
    rows = await pool.fetch("SELECT at, sequence, cost_usd, proceeds_usd, cost_basis_sold_usd, realized_pnl_usd "
                            "FROM transactions WHERE portfolio_id = $1 ORDER BY at, sequence", portfolio_id)
    return metrics, [tuple(row) for row in rows]


@pytest.fixture
def reads_back(monkeypatch) -> list[str]:
    """The portfolios whose flows were read back from the database."""
    calls: list[str] = []
    real = repo.save_outcomes_and_flows

    async def counting(connection, portfolio_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(portfolio_id)
        return await real(connection, portfolio_id, *args, **kwargs)

    monkeypatch.setattr(repo, "save_outcomes_and_flows", counting)
    return calls


async def test_trades_appended_with_remembered_flows_store_what_reading_them_back_stores(pool, reads_back) -> None:
    remembering, reading = copy_of(pool), copy_of(pool, remembers=False)
    fast, slow = await new_portfolio(remembering, "remembered"), await new_portfolio(reading, "read back")
    await handlers.run_batch(remembering, [trade(fast, 0)])
    await handlers.run_batch(remembering, [trade(fast, 1), trade(fast, 2)])  # two appends in one batch
    for number in range(3, len(TRADES)):
        await handlers.run_batch(remembering, [trade(fast, number)])
    for number in range(len(TRADES)):
        await handlers.run_batch(reading, [trade(slow, number)])

    assert reads_back.count(fast) == 1, "read once, as the portfolio was created; every trade appended knew them"
    assert reads_back.count(slow) == 1 + len(TRADES)
    fast_metrics, fast_rows = await stored(pool, fast)
    slow_metrics, slow_rows = await stored(pool, slow)
    assert fast_metrics["irr_pct"] is not None
    assert fast_metrics == slow_metrics and fast_rows == slow_rows


async def test_a_write_by_another_copy_is_never_covered_by_flows_remembered_before_it(pool, reads_back) -> None:
    first, second, reference = copy_of(pool), copy_of(pool), copy_of(pool, remembers=False)
    shared, alone = await new_portfolio(first, "two copies"), await new_portfolio(reference, "one copy")
    for number, copy in enumerate([first, first, second, first, second, first]):
        await handlers.run_batch(copy, [trade(shared, number)])
        await handlers.run_batch(reference, [trade(alone, number)])

    assert reads_back.count(shared) == 5, "each copy's memo is stale after the other wrote; only 1 → 2 is known"
    assert await stored(pool, shared) == await stored(pool, alone)


async def test_a_message_undone_in_its_batch_leaves_no_flows_behind(pool, reads_back, monkeypatch) -> None:
    service, reference = copy_of(pool), copy_of(pool, remembers=False)
    portfolio_id, alone = await new_portfolio(service, "undone"), await new_portfolio(reference, "reference")
    real_updated_event = commands.updated_event

    def failing_after_its_figures(state, metrics, cause, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(cause, "note", None) == "fails":
            raise RuntimeError("a bug after the figures were computed")
        return real_updated_event(state, metrics, cause, *args, **kwargs)

    monkeypatch.setattr(commands, "updated_event", failing_after_its_figures)
    await handlers.run_batch(service, [trade(portfolio_id, 0)])
    results = await handlers.run_batch(service, [trade(portfolio_id, 1, note="fails"), trade(portfolio_id, 2)])
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], Handled) and results[1].reply.ok
    for number in (3, 4):
        await handlers.run_batch(service, [trade(portfolio_id, number)])
    for number in (0, 2, 3, 4):
        await handlers.run_batch(reference, [trade(alone, number)])

    metrics, rows = await stored(pool, portfolio_id)
    assert len(rows) == 4 and (metrics, rows) == await stored(pool, alone)


async def test_a_message_undone_before_its_row_was_written_leaves_no_row_behind(pool, reads_back, monkeypatch) -> None:
    service, reference = copy_of(pool), copy_of(pool, remembers=False)
    portfolio_id, alone = await new_portfolio(service, "undone early"), await new_portfolio(reference, "reference")
    real_refresh = commands.refresh_metrics

    async def failing_before_its_row(service, uow, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(uow.cause, "note", None) == "fails":
            raise RuntimeError("a bug between deferring the row and writing it")
        return await real_refresh(service, uow, state, *args, **kwargs)

    monkeypatch.setattr(commands, "refresh_metrics", failing_before_its_row)
    await handlers.run_batch(service, [trade(portfolio_id, 0)])
    results = await handlers.run_batch(service, [trade(portfolio_id, 1, note="fails"), trade(portfolio_id, 2)])
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], Handled) and results[1].reply.ok
    await handlers.run_batch(service, [trade(portfolio_id, 3)])
    for number in (0, 2, 3):
        await handlers.run_batch(reference, [trade(alone, number)])

    metrics, rows = await stored(pool, portfolio_id)
    assert len(rows) == 3 and (metrics, rows) == await stored(pool, alone)
