"""The write handlers run against an in-memory repository: load → domain → save → emit, with no database."""

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from contracts.envelope import Message
from contracts.portfolios import (
    CostBasisMethod,
    CreatePortfolio,
    DeleteTransaction,
    EditTransaction,
    PortfolioUpdated,
    RecordTransaction,
)
from contracts.prices import PriceRequested, PriceResolved
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio.commands import WRITES
from portfolio.domain import InsufficientHoldings, Ledger, midnights_between, replay_ledger
from portfolio.domain.events import PortfolioState, apply_event, read_event
from portfolio.handlers import as_one_answer, handle_write
from portfolio.market_data import PriceSource
from portfolio.service import PortfolioService
from portfolio.unit_of_work import UnitOfWork

from tests.unit.portfolio.fake_repository import FakeRepository

OWNER = "owner-fake"
START = datetime(2024, 1, 1, tzinfo=UTC)


class Harness:
    """The service over a fake repository, and the event log the handlers staged (one stream per portfolio)."""

    def __init__(self) -> None:
        self.repository = FakeRepository()
        self.service = PortfolioService(None, PriceSource(None))  # type: ignore[arg-type]
        days = midnights_between(START - timedelta(days=2), START + timedelta(days=400))
        self.service.opens.learn([(day, Decimal(40_000 + 10 * n)) for n, day in enumerate(days)])
        self.log: dict[str, list[tuple[str, dict[str, Any], datetime]]] = {}

    async def send(self, message: Message) -> tuple[Any, list[Message]]:
        """The message through the service's own write dispatch; its result (a command's) and what it emitted."""
        uow = UnitOfWork(None, self.repository)  # type: ignore[arg-type]
        handled = await handle_write(self.service, uow, message)
        for append in uow.appends:
            stream = self.log.setdefault(append.stream_id, [])
            assert len(stream) == append.expected_version, "appended after the version it loaded"
            stream.extend((event.type, event.payload, append.recorded_at) for event in append.events)
        result = handled.reply.result if handled.reply is not None else None
        return SimpleNamespace(**result) if isinstance(result, dict) else result, handled.outgoing

    def folded(self, portfolio_id: str) -> PortfolioState:
        state = None
        for kind, payload, at in self.log[f"portfolio-{portfolio_id}"]:
            state = apply_event(state, read_event(kind, payload), at)
        assert state is not None
        return state

    async def replayed_ledger(self, portfolio_id: str, method: CostBasisMethod) -> Ledger:
        trades = await self.repository.priced_trades(None, portfolio_id)
        return replay_ledger(method, trades, self.service.opens.between)[0]

    def stored_ledger(self, portfolio_id: str) -> dict[str, Any]:
        return json.loads(self.repository.portfolios[portfolio_id]["ledger"])  # type: ignore[no-any-return]

    def metrics(self, portfolio_id: str) -> dict[str, Any]:
        return json.loads(self.repository.portfolios[portfolio_id]["metrics"])  # type: ignore[no-any-return]


async def sellable(repository: FakeRepository, portfolio_id: str, at: datetime) -> Decimal:
    """The most a sell at `at` may take: the holdings then, and at every later trade, stay covered."""
    running, before, later = Decimal(0), Decimal(0), []
    for trade in sorted(await repository.holdings_timeline(None, portfolio_id), key=lambda t: t.timeline_key):
        running += trade.amount_btc if trade.is_buy else -trade.amount_btc
        if trade.at <= at:
            before = running
        else:
            later.append(running)
    return min([before, *later])


def record(portfolio_id: str, side: str, amount: str, at: datetime, price: str | None) -> RecordTransaction:
    return RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side, amount_btc=Decimal(amount), at=at,
                             fee_usd=Decimal("1.5"), price_usd=None if price is None else Decimal(price))


async def test_record_edit_delete_and_a_price_answer_run_against_the_fake_and_equal_a_full_replay() -> None:
    harness = Harness()
    created, outgoing = await harness.send(CreatePortfolio(owner_id=OWNER, name="Fake", cost_basis_method="fifo"))
    portfolio_id = created.portfolio_id
    assert [type(m) for m in outgoing] == [PortfolioUpdated]

    ids = []
    for hours, side, amount, price in [(48, "buy", "1", "42000"), (10, "buy", "0.5", "40000"),
                                       (72, "sell", "0.7", "45000"), (30, "buy", "0.25", "41000.5")]:
        view, outgoing = await harness.send(record(portfolio_id, side, amount, START + timedelta(hours=hours), price))
        ids.append(view.transaction_id)
        update = next(m for m in outgoing if isinstance(m, PortfolioUpdated))
        assert update.version == harness.folded(portfolio_id).version  # emitted at the version just appended
    await harness.send(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=ids[1],
                                       at=START + timedelta(hours=90)))  # moved after the sell: FIFO changes
    await harness.send(DeleteTransaction(owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=ids[3]))

    pending_at = START + timedelta(hours=5)
    view, outgoing = await harness.send(record(portfolio_id, "buy", "0.1", pending_at, None))
    assert view.status == "pending"
    request = next(m for m in outgoing if isinstance(m, PriceRequested))
    assert harness.metrics(portfolio_id)["pending_count"] == 1
    _, outgoing = await harness.send(PriceResolved(
        transaction_id=view.transaction_id, portfolio_id=portfolio_id, at=pending_at, hour=int(pending_at.timestamp()) // 3600 * 3600,
        price_usd=Decimal("39000"), source="test", **request.caused()))
    assert [m.reason for m in outgoing] == ["transaction_priced"]  # type: ignore[attr-defined]

    replayed = await harness.replayed_ledger(portfolio_id, CostBasisMethod.FIFO)
    assert harness.stored_ledger(portfolio_id) == replayed.to_json()
    metrics = harness.metrics(portfolio_id)
    assert Decimal(metrics["realized_pnl_usd"]) == replayed.realized_pnl_usd
    assert Decimal(metrics["holdings_btc"]) == replayed.holdings_btc == Decimal("0.9")
    assert (metrics["transaction_count"], metrics["pending_count"]) == (4, 0)
    folded = harness.folded(portfolio_id)
    assert folded.version == harness.repository.portfolios[portfolio_id]["version"] == 9
    assert {tx.transaction_id: tx.status for tx in folded.transactions.values()} == {
        row["transaction_id"]: row["status"] for row in harness.repository.transactions.values()}


async def test_a_sell_beyond_the_holdings_is_refused_before_anything_is_staged() -> None:
    harness = Harness()
    created, _ = await harness.send(CreatePortfolio(owner_id=OWNER, name="Small"))
    await harness.send(record(created.portfolio_id, "buy", "0.2", START + timedelta(hours=3), "40000"))
    uow = UnitOfWork(None, harness.repository)  # type: ignore[arg-type]
    command = record(created.portfolio_id, "sell", "0.3", START + timedelta(hours=4), "41000")
    with pytest.raises(InsufficientHoldings):
        await WRITES[RecordTransaction](harness.service, uow, command)
    assert uow.appends == [] and len(harness.repository.transactions) == 1


async def test_six_hundred_trades_keep_checkpoints_and_a_back_dated_buy_refolds_from_the_one_before() -> None:
    harness = Harness()
    created, _ = await harness.send(CreatePortfolio(owner_id=OWNER, name="Long", cost_basis_method="hifo"))
    portfolio_id = created.portfolio_id
    for n in range(600):
        side = "sell" if n % 3 == 2 else "buy"
        await harness.send(record(portfolio_id, side, "0.01" if side == "sell" else "0.02",
                                  START + timedelta(hours=2 * n), str(40_000 + 7 * n)))
    assert sorted(harness.repository.checkpoints[portfolio_id]) == [256, 512]
    await harness.send(record(portfolio_id, "buy", "0.3", START + timedelta(hours=2 * 550 + 1), "41000"))
    replayed = await harness.replayed_ledger(portfolio_id, CostBasisMethod.HIFO)
    assert harness.stored_ledger(portfolio_id) == replayed.to_json()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(list(CostBasisMethod)), seed=st.integers(0, 2**32 - 1),
       count=st.integers(1, 40))
async def test_random_histories_in_any_order_store_the_ledger_of_a_full_replay(method, seed, count) -> None:
    """Typed-price trades posted in random time order, with edits and deletes mixed in: the ledger and figures the
    handlers store through the fake are the full replay's, and the staged events fold to the stored header."""
    rng = random.Random(seed)
    harness = Harness()
    created, _ = await harness.send(CreatePortfolio(owner_id=OWNER, name="Random", cost_basis_method=method))
    portfolio_id = created.portfolio_id
    recorded = []
    for hour in rng.sample(range(1, 24 * 300), count):  # times in random order: many trades are back-dated
        at = START + timedelta(hours=hour)
        price = str(rng.randint(30_000, 70_000))
        if await sellable(harness.repository, portfolio_id, at) >= Decimal("0.01") and rng.random() < 0.4:
            view, _ = await harness.send(record(portfolio_id, "sell", "0.01", at, price))
        else:
            view, _ = await harness.send(record(portfolio_id, "buy", str(Decimal(rng.randint(1, 50)) / 100), at, price))
        recorded.append(view.transaction_id)
        if rng.random() < 0.15:
            await harness.send(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                               transaction_id=rng.choice(recorded), fee_usd=Decimal(rng.randint(0, 20))))
    replayed = await harness.replayed_ledger(portfolio_id, method)
    assert harness.stored_ledger(portfolio_id) == replayed.to_json()
    assert Decimal(harness.metrics(portfolio_id)["realized_pnl_usd"]) == replayed.realized_pnl_usd
    assert harness.folded(portfolio_id).version == harness.repository.portfolios[portfolio_id]["version"]


class MarketPriced:
    """Trades recorded without a price, and their answers, delivered the way the writer's windows apply them."""

    def __init__(self, harness: Harness, portfolio_id: str) -> None:
        self.harness, self.portfolio_id = harness, portfolio_id
        self.answers: list[PriceResolved] = []

    async def record(self, side: str, amount: Decimal, at: datetime, price: int) -> None:
        view, outgoing = await self.harness.send(record(self.portfolio_id, side, str(amount), at, None))
        request = next(m for m in outgoing if isinstance(m, PriceRequested))
        self.answers.append(PriceResolved(
            transaction_id=view.transaction_id, portfolio_id=self.portfolio_id, at=at,
            hour=int(at.timestamp()) // 3600 * 3600, price_usd=Decimal(price), source="test", **request.caused()))

    async def deliver(self, window: list[PriceResolved]) -> None:
        """One window: a lone answer as it came, several as the one answer of their batch (one fold)."""
        await self.harness.send(window[0] if len(window) == 1 else as_one_answer(window))

    async def assert_is_a_full_replay(self, method: CostBasisMethod) -> None:
        replayed = await self.harness.replayed_ledger(self.portfolio_id, method)
        assert self.harness.stored_ledger(self.portfolio_id) == replayed.to_json()
        assert Decimal(self.harness.metrics(self.portfolio_id)["realized_pnl_usd"]) == replayed.realized_pnl_usd
        outcomes = {o.transaction_id: o for o in replay_ledger(
            method, await self.harness.repository.priced_trades(None, self.portfolio_id),
            self.harness.service.opens.between)[1]}
        for row in self.harness.repository.transactions.values():
            outcome = outcomes.get(row["transaction_id"])
            assert (row["cost_usd"], row["proceeds_usd"], row["realized_pnl_usd"]) == (
                (outcome.cost_usd, outcome.proceeds_usd, outcome.realized_pnl_usd) if outcome else (None, None, None))
        assert self.harness.folded(self.portfolio_id).version == \
            self.harness.repository.portfolios[self.portfolio_id]["version"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(list(CostBasisMethod)), seed=st.integers(0, 2**32 - 1),
       count=st.integers(1, 40))
async def test_market_priced_trades_answered_in_windows_of_any_size_and_order_store_a_full_replay(
        method, seed, count) -> None:
    """Trades at random times, recorded without a price; while more are recorded, their answers arrive in any
    order, some twice, in windows of any size (each applied in one fold, from its earliest trade or on from the
    stored ledger's end): after every window the stored ledger, figures and rows are the full replay's."""
    rng = random.Random(seed)
    harness = Harness()
    created, _ = await harness.send(CreatePortfolio(owner_id=OWNER, name="Windows", cost_basis_method=method))
    trades = MarketPriced(harness, created.portfolio_id)
    waiting: list[PriceResolved] = []
    hours = rng.sample(range(1, 24 * 300), count)
    if rng.random() < 0.5:
        hours.sort()  # posted in time order: windows mostly extend the ledger
    for hour in hours:
        at = START + timedelta(hours=hour)
        if await sellable(harness.repository, created.portfolio_id, at) >= Decimal("0.01") and rng.random() < 0.4:
            await trades.record("sell", Decimal("0.01"), at, rng.randint(30_000, 70_000))
        else:
            await trades.record("buy", Decimal(rng.randint(1, 50)) / 100, at, rng.randint(30_000, 70_000))
        waiting.append(trades.answers[-1])
        if rng.random() < 0.5:
            rng.shuffle(waiting)
            size = rng.randint(1, len(waiting))
            window, waiting = waiting[:size], waiting[size:]
            if rng.random() < 0.2:
                window.append(rng.choice(trades.answers))  # delivered again: ignored
            await trades.deliver(window)
            await trades.assert_is_a_full_replay(method)
    rng.shuffle(waiting)
    while waiting:
        size = rng.randint(1, len(waiting))
        await trades.deliver(waiting[:size])
        waiting = waiting[size:]
    await trades.assert_is_a_full_replay(method)
    assert harness.metrics(created.portfolio_id)["pending_count"] == 0


async def test_windows_of_answers_in_time_order_extend_the_ledger_and_keep_its_checkpoints() -> None:
    harness = Harness()
    created, _ = await harness.send(CreatePortfolio(owner_id=OWNER, name="In order", cost_basis_method="fifo"))
    trades = MarketPriced(harness, created.portfolio_id)
    for n in range(530):
        side, amount = ("sell", Decimal("0.01")) if n % 3 == 2 else ("buy", Decimal("0.02"))
        await trades.record(side, amount, START + timedelta(hours=2 * n), 40_000 + 7 * n)
    for first in range(0, 530, 7):
        await trades.deliver(trades.answers[first:first + 7])
    assert sorted(harness.repository.checkpoints[created.portfolio_id]) == [256, 512]
    await trades.assert_is_a_full_replay(CostBasisMethod.FIFO)
