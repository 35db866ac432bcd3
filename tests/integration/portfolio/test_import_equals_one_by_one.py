"""Hypothesis: an import priced in one batch gives the same portfolio as the same trades posted one by one, their
single price answers delivered in any order and any batching, and both equal a full replay."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import CostBasisMethod, CreatePortfolio, ImportTransactions, RecordTransaction
from contracts.prices import PriceRequested, PriceResolved, ResolvedPrice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio import handlers
from portfolio.market_data import PriceSource
from portfolio.replay import differences, rebuild
from portfolio.service import PortfolioService

OWNER = "one-by-one"
START = datetime(2024, 2, 1, tzinfo=UTC)


def price_at(at: datetime) -> Decimal:
    """A made-up price for each hour, so that every trade's price differs."""
    return Decimal(40000) + Decimal(int(at.timestamp()) // 3600 % 997) * Decimal("13.37")


@pytest.fixture(scope="session")
async def import_database(make_database) -> str:
    return (await make_database("portfolio")).replace("+asyncpg", "")


async def created(service: PortfolioService, method: CostBasisMethod) -> str:
    reply, _ = await handlers.handle_command(service, CreatePortfolio(owner_id=OWNER, name="p",
                                                                      cost_basis_method=method))
    return reply.result["portfolio_id"]


async def figures(service: PortfolioService, portfolio_id: str) -> tuple[dict, list]:
    metrics = await service.pool.fetchval("SELECT metrics FROM portfolios WHERE portfolio_id = $1", portfolio_id)
    rows = await service.pool.fetch(
        "SELECT at, side, amount_btc, fee_usd, price_usd, status, cost_usd, proceeds_usd, cost_basis_sold_usd, "
        "realized_pnl_usd FROM transactions WHERE portfolio_id = $1 ORDER BY at, sequence", portfolio_id)
    return metrics, [tuple(row) for row in rows]


TRADES = st.lists(st.tuples(st.sampled_from(["buy", "buy", "sell"]), st.sampled_from(["0.1", "0.25", "1"]),
                            st.integers(0, 24 * 60), st.sampled_from(["0", "1.5"])), min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(trades=TRADES, method=st.sampled_from(list(CostBasisMethod)), order=st.randoms(use_true_random=False),
       batch_size=st.integers(1, 5))
async def test_an_import_priced_in_one_batch_equals_the_same_trades_posted_one_by_one(
        import_database, trades, method, order, batch_size) -> None:
    pool = await asyncpg.create_pool(import_database, min_size=1, max_size=2)
    service = PortfolioService(pool, PriceSource(None))
    try:
        held, rows = Decimal(0), []
        for side, amount, hours, fee in sorted(trades, key=lambda t: t[2]):
            if side == "sell" and Decimal(amount) > held:
                continue  # keep every sell covered, so both ways accept the same trades
            held += Decimal(amount) if side == "buy" else -Decimal(amount)
            rows.append((side, amount, START + timedelta(hours=hours, minutes=7), fee))
        # one import: one batch request, one batch answer
        imported = await created(service, method)
        csv_text = "side,amount_btc,at,fee_usd,price_usd,note\n" + "".join(
            f"{side},{amount},{at.isoformat()},{fee},,\n" for side, amount, at, fee in rows)
        reply, outgoing = await handlers.handle_command(service, ImportTransactions(
            owner_id=OWNER, portfolio_id=imported, csv_text=csv_text))
        assert reply.ok, reply.error
        if rows:
            [request] = [m for m in outgoing if isinstance(m, PriceRequested)]
            await handlers.on_price_answer(service, PriceResolved(
                schema_version=2, portfolio_id=imported, resolved=[ResolvedPrice(
                    request_id=item.request_id, transaction_id=item.transaction_id, at=item.at,
                    hour=int(item.at.timestamp()) // 3600 * 3600, price_usd=price_at(item.at), source="test")
                    for item in request.wanted()], **request.caused()))
        # the same trades posted one by one; their answers shuffled and delivered in batches
        posted = await created(service, method)
        answers = []
        for side, amount, at, fee in rows:
            reply, outgoing = await handlers.handle_command(service, RecordTransaction(
                owner_id=OWNER, portfolio_id=posted, side=side, amount_btc=Decimal(amount), at=at,
                fee_usd=Decimal(fee)))
            assert reply.ok, reply.error
            request = next(m for m in outgoing if isinstance(m, PriceRequested))
            answers.append(PriceResolved(transaction_id=request.transaction_id, portfolio_id=posted, at=at,
                                         hour=int(at.timestamp()) // 3600 * 3600, price_usd=price_at(at),
                                         source="test", **request.caused()))
        order.shuffle(answers)
        while answers:
            results = await handlers.run_batch(service, answers[:batch_size])
            assert not [r for r in results if isinstance(r, Exception)]
            answers = answers[batch_size:]
        assert await figures(service, imported) == await figures(service, posted)
        for portfolio_id in (imported, posted):
            assert await differences(pool, await rebuild(service, portfolio_id), portfolio_id) == []
    finally:
        await pool.close()
