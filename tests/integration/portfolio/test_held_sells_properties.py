"""Sells that lean on buys that fail, change or go: every read answers, holdings never go negative, replay agrees."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from contracts.portfolios import (
    CreatePortfolio,
    DeleteTransaction,
    EditTransaction,
    GetHistory,
    GetPortfolio,
    GetTransaction,
    ImportTransactions,
    ListPortfolios,
    ListTransactions,
    RecordTransaction,
)
from contracts.prices import (
    Candle,
    PriceRange,
    PriceResolved,
    PriceUnavailable,
    UnavailablePrice,
    UnavailableReason,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio import handlers
from portfolio import repository as repo
from portfolio.domain import irr_at
from portfolio.market_data import PriceSource
from portfolio.replay import differences, rebuild
from portfolio.service import PortfolioService

START = datetime(2024, 2, 1, tzinfo=UTC)
OWNER = "holds"
FLAT = Decimal("50000")
LATEST = Decimal("60000")
AS_OF = datetime(2024, 4, 1, tzinfo=UTC)


@dataclass
class FlatPrices(PriceSource):
    """The price service's ranges as one flat price at every step (for history and midnight opens)."""

    async def range(self, start: int, end: int, step: str) -> PriceRange | None:
        seconds = 3600 if step == "hour" else 86400
        first = start // seconds * seconds
        return PriceRange(start=start, end=end, step=step, candles=[
            Candle(hour=t, open=FLAT, high=FLAT, low=FLAT, close=FLAT, volume=Decimal(1))
            for t in range(first if first >= start else first + seconds, end + 1, seconds)])


@pytest.fixture(scope="session")
async def holds_database(make_database) -> str:
    return (await make_database("portfolio")).replace("+asyncpg", "")


async def service_on(url: str) -> PortfolioService:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    service = PortfolioService(pool, FlatPrices(None))
    await repo.save_market(pool, int(AS_OF.timestamp()) - 3600, LATEST, AS_OF)
    return service


async def ok(service: PortfolioService, command) -> dict:
    reply, _ = await handlers.handle_command(service, command)
    assert reply.ok, reply.error
    return reply.result


async def assert_consistent(service: PortfolioService, portfolio_id: str) -> None:
    """Every read answers; no time shows negative holdings; held sells have no figures; replay agrees."""
    view = await ok(service, GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    await ok(service, ListPortfolios(owner_id=OWNER))
    page = await ok(service, ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id, limit=1000))
    history = await ok(service, GetHistory(owner_id=OWNER, portfolio_id=portfolio_id, start=START,
                                           end=START + timedelta(days=40), interval="hour"))
    assert all(Decimal(point["holdings_btc"]) >= 0 for point in history["points"])
    metrics = view["metrics"]
    assert Decimal(metrics["holdings_btc"]) >= 0
    by_status = {status: sum(1 for t in page["items"] if t["status"] == status)
                 for status in ("pending", "priced", "failed")}
    assert (metrics["pending_count"], metrics["failed_count"], metrics["transaction_count"]) == \
        (by_status["pending"], by_status["failed"], len(page["items"]))
    counted = sorted((t for t in page["items"] if t["status"] == "priced"), key=lambda t: (t["at"], t["recorded_at"]))
    held = Decimal(0)
    for trade in counted:  # the shown priced trades alone make a valid timeline, as the ledger folds it
        assert trade["metrics"] is not None
        held += Decimal(trade["amount_btc"]) * (1 if trade["side"] == "buy" else -1)
        assert held >= 0
    assert Decimal(metrics["holdings_btc"]) == held
    for trade in page["items"]:
        if trade["status"] != "priced":
            assert trade["metrics"] is None
        if trade["status"] == "failed" and trade["failure_reason"] == "insufficient_holdings":
            assert "can't be counted" in trade["failure_detail"]
    flows = [(datetime.fromisoformat(t["at"]), -Decimal(t["metrics"]["cost_usd"]) if t["side"] == "buy"
              else Decimal(t["metrics"]["proceeds_usd"])) for t in counted]
    expected_irr = irr_at(flows, Decimal(metrics["current_value_usd"]), AS_OF)
    assert (None if metrics["irr_pct"] is None else Decimal(metrics["irr_pct"])) == expected_irr
    rebuilt = await rebuild(service, portfolio_id)
    assert await differences(service.pool, rebuilt, portfolio_id) == []


async def test_a_sell_that_leaned_on_a_failed_buy_fails_with_a_reason_and_the_portfolio_stays_readable(
        holds_database) -> None:
    """The issue's import: a buy before the price data, a typed sell after it, and a small priced buy."""
    service = await service_on(holds_database)
    portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="holds")))["portfolio_id"]
    csv_text = ("side,amount_btc,at,fee_usd,price_usd,note\nbuy,1,2023-06-01T00:00:00Z,,,\n"
                "sell,0.5,2024-03-01T12:00:00Z,2,60000,\nbuy,0.2,2024-02-10T00:00:00Z,1,40000,\n")
    reply, outgoing = await handlers.handle_command(
        service, ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=csv_text))
    assert reply.ok and reply.result["imported"] == 3
    rows = {row["line"]: row["transaction_id"] for row in reply.result["rows"]}
    sell = await ok(service, GetTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                     transaction_id=rows[3]))
    assert sell["status"] == "pending" and sell["metrics"] is None  # it waits for the 2023 buy to be priced
    await assert_consistent(service, portfolio_id)
    request = next(m for m in outgoing if m.routing_key == "price.requested")  # the file's one batch request
    assert [item.transaction_id for item in request.wanted()] == [rows[2]]
    await handlers.on_price_answer(service, PriceResolved(
        schema_version=2, portfolio_id=portfolio_id, unavailable=[UnavailablePrice(
            request_id=request.items[0].request_id, transaction_id=rows[2], at=request.items[0].at,
            reason=UnavailableReason.BEFORE_DATA, detail="No price data before 2024-01-01.")], **request.caused()))
    sell = await ok(service, GetTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                     transaction_id=rows[3]))
    assert sell["status"] == "failed" and sell["failure_reason"] == "insufficient_holdings"
    assert "You hold 0.2 BTC on 2024-03-01 12:00 UTC" in sell["failure_detail"]
    view = await ok(service, GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert Decimal(view["metrics"]["holdings_btc"]) == Decimal("0.2")
    assert view["metrics"]["realized_pnl_usd"] == "0" and view["metrics"]["failed_count"] == 2
    await assert_consistent(service, portfolio_id)
    # a buy added before it covers the sell again: it is counted, with its figures
    await ok(service, RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                        amount_btc=Decimal("0.4"), at=START, price_usd=Decimal("42000")))
    sell = await ok(service, GetTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                     transaction_id=rows[3]))
    assert sell["status"] == "priced" and sell["failure_reason"] is None and sell["metrics"] is not None
    await assert_consistent(service, portfolio_id)
    await service.pool.close()


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("record"), st.sampled_from(["buy", "buy", "sell"]), st.sampled_from(["0.1", "0.5", "1"]),
              st.integers(0, 30), st.booleans()),
    st.tuples(st.just("answer"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("edit"), st.integers(0, 50), st.sampled_from(["0.1", "0.5", "1"]), st.integers(0, 30)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
), min_size=3, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS)
async def test_random_histories_with_failed_pricing_edits_and_deletes_stay_readable_and_replayable(
        holds_database, operations) -> None:
    service = await service_on(holds_database)
    try:
        portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="random")))["portfolio_id"]
        requests: list = []
        recorded: list[str] = []
        for operation in operations:
            if operation[0] == "record":
                _, side, amount, day, typed = operation
                at = START + timedelta(days=day, hours=day % 7)
                reply, outgoing = await handlers.handle_command(service, RecordTransaction(
                    owner_id=OWNER, portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount), at=at,
                    price_usd=Decimal(40000 + 1000 * day) if typed else None))
                if reply.ok:
                    recorded.append(reply.result["transaction_id"])
                requests += [m for m in outgoing if m.routing_key == "price.requested"]
            elif operation[0] == "answer" and requests:
                request = requests.pop(operation[1] % len(requests))
                if operation[2]:
                    answer = PriceResolved(transaction_id=request.transaction_id, portfolio_id=portfolio_id,
                                           at=request.at, hour=int(request.at.timestamp()) // 3600 * 3600,
                                           price_usd=Decimal(45000), source="test", **request.caused())
                else:
                    answer = PriceUnavailable(transaction_id=request.transaction_id, portfolio_id=portfolio_id,
                                              at=request.at, reason=UnavailableReason.BEFORE_DATA,
                                              detail="No price then.", **request.caused())
                await handlers.on_price_answer(service, answer)
            elif operation[0] == "edit" and recorded:
                _, which, amount, day = operation
                _, outgoing = await handlers.handle_command(service, EditTransaction(
                    owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=recorded[which % len(recorded)],
                    amount_btc=Decimal(amount), at=START + timedelta(days=day, hours=3)))
                requests += [m for m in outgoing if m.routing_key == "price.requested"]
            elif operation[0] == "delete" and recorded:
                await handlers.handle_command(service, DeleteTransaction(
                    owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=recorded.pop(operation[1] % len(recorded))))
            await assert_consistent(service, portfolio_id)
    finally:
        await service.pool.close()


async def test_a_priced_buy_edited_to_be_priced_again_keeps_no_figures_from_its_old_price(holds_database) -> None:
    """Review finding (the Hypothesis test above hit it): the live row kept the old cost_usd, the replay has none."""
    service = await service_on(holds_database)
    try:
        portfolio_id = (await ok(service, CreatePortfolio(owner_id=OWNER, name="repriced")))["portfolio_id"]
        reply, outgoing = await handlers.handle_command(service, RecordTransaction(
            owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal("0.1"), at=START))
        request = next(m for m in outgoing if m.routing_key == "price.requested")
        await handlers.on_price_answer(service, PriceResolved(
            transaction_id=request.transaction_id, portfolio_id=portfolio_id, at=request.at,
            hour=int(request.at.timestamp()) // 3600 * 3600, price_usd=Decimal(45000), source="test",
            **request.caused()))
        await ok(service, EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                          transaction_id=reply.result["transaction_id"],
                                          at=START + timedelta(days=1, hours=3)))  # a new time: priced again
        await assert_consistent(service, portfolio_id)
    finally:
        await service.pool.close()
