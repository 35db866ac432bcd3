"""The write batcher's windows: single price answers of one portfolio that follow each other run in one batch.

A fake clock decides when a window closes (the loop's own timers only ask it), so nothing here depends on how fast
the machine runs."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from contracts.envelope import Message
from contracts.portfolios import RenamePortfolio
from contracts.prices import PriceResolved
from portfolio import handlers, messaging
from portfolio.messaging import WriteBatcher

AT = datetime(2024, 5, 1, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Batches(list[list[str]]):
    """The message ids of every batch the writer runs, in order; each takes `took` seconds of the fake clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock, self.took = clock, 0.0

    async def run(self, service: Any, messages: Sequence[Message]) -> list[handlers.Handled]:
        self.append([m.message_id for m in messages])
        self.clock.now += self.took
        return [handlers.Handled() for _ in messages]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Batches:
    ran = Batches(clock)
    monkeypatch.setattr(messaging.handlers, "run_batch", ran.run)
    return ran


def answer(portfolio_id: str, n: int, later: bool = False) -> PriceResolved:
    """The answer for trade `n`: each earlier than the one before (back-dated), or `later` than it."""
    at = AT + timedelta(hours=n) if later else AT - timedelta(hours=n)
    return PriceResolved(message_id=f"{portfolio_id}-{n}", transaction_id=f"tx-{n}", portfolio_id=portfolio_id,
                         at=at, hour=int(at.timestamp()) // 3600 * 3600, price_usd=Decimal(60000 + n), source="test")


class Writer:
    """A WriteBatcher on the fake clock (windows of 0.1 s to 1 s), its lanes running, and what was submitted."""

    def __init__(self, clock: Clock, limit: int = 100) -> None:
        self.clock = clock
        self.batcher = WriteBatcher(None, None, limit=limit, lanes=2, linger_seconds=0.1,  # type: ignore[arg-type]
                                    coalesce_seconds=1.0, clock=clock)
        self.running = asyncio.create_task(self.batcher.run())
        self.submitted: list[asyncio.Task[handlers.Handled]] = []

    async def send(self, message: Message, after: float = 0.0) -> None:
        """Submit `message` `after` seconds (on the fake clock) after the previous one, and let the loop run."""
        self.clock.now += after
        self.submitted.append(asyncio.create_task(self.batcher.submit(message)))
        await settle()

    async def tick(self, seconds: float, portfolio_id: str) -> None:
        """Let fake time pass, then fire the window's timer as the loop would."""
        self.clock.now += seconds
        self.batcher.due(portfolio_id)
        await settle()

    async def close(self) -> None:
        await asyncio.gather(*self.submitted)
        self.running.cancel()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_answer_runs_at_once_and_one_that_follows_opens_a_window(clock, batches) -> None:
    writer = Writer(clock)
    await writer.send(answer("p", 1))
    assert batches == [["p-1"]]  # nothing came before it: it did not wait
    await writer.send(answer("p", 2), after=0.05)
    await writer.send(answer("p", 3), after=0.04)
    assert [m.message_id for m, _ in writer.batcher.parked["p"].items] == ["p-2", "p-3"]
    await writer.tick(0.05, "p")  # 0.09 s since it opened: still open
    assert batches == [["p-1"]]
    await writer.tick(0.02, "p")  # 0.11 s: closed, both in one batch (one fold)
    assert batches == [["p-1"], ["p-2", "p-3"]] and not writer.batcher.parked
    await writer.send(answer("p", 4), after=0.2)  # a pause: alone again
    assert batches[-1] == ["p-4"]
    await writer.close()


async def test_a_window_lasts_eight_times_the_last_fold_of_its_portfolio_however_many_answers_come(
        clock, batches) -> None:
    writer = Writer(clock)
    batches.took = 0.05  # each batch of this portfolio's answers takes 0.05 s
    await writer.send(answer("p", 0))
    for n in range(1, 8):  # every 0.05 s for 0.3 s: all in the window of 8 × 0.05 s
        await writer.send(answer("p", n), after=0.05)
        await writer.tick(0.0, "p")
    assert batches == [["p-0"]]
    await writer.tick(0.11, "p")  # 0.41 s since it opened at p-1
    assert batches == [["p-0"], [f"p-{n}" for n in range(1, 8)]]
    batches.took = 0.5
    await writer.send(answer("p", 8), after=0.5)  # after a pause: alone, and its batch takes 0.5 s
    await writer.send(answer("p", 9), after=0.1)
    await writer.send(answer("p", 10), after=0.5)
    await writer.tick(0.45, "p")  # 8 × 0.5 s would be 4 s: the window is capped at 1 s
    assert batches[-1] == ["p-8"]
    await writer.tick(0.1, "p")
    assert batches[-1] == ["p-9", "p-10"]
    await writer.close()


async def test_a_full_window_runs_at_once_and_portfolios_keep_their_own_windows(clock, batches) -> None:
    writer = Writer(clock, limit=3)
    await writer.send(answer("a", 0))
    await writer.send(answer("b", 0))
    for n in (1, 2, 3):
        await writer.send(answer("a", n), after=0.01)
    await writer.send(answer("b", 1), after=0.01)
    assert ["a-1", "a-2", "a-3"] in batches  # the limit closed it without waiting
    assert [m.message_id for m, _ in writer.batcher.parked["b"].items] == ["b-1"]
    rename = RenamePortfolio(owner_id="o", portfolio_id="b", name="n")
    await writer.send(rename)  # a command never waits, even while its portfolio's answers do
    assert batches[-1] == [rename.message_id] and "b" in writer.batcher.parked
    await writer.tick(0.2, "b")
    assert batches[-1] == ["b-1"] and not writer.batcher.parked
    await writer.close()


async def test_answers_in_time_order_never_wait_and_a_back_dated_one_among_them_does(clock, batches) -> None:
    """An answer later than every one before it extends the ledger (an O(1) append): it runs at once however close
    it follows the last, so trades recorded in time order keep their latency. Only back-dated ones share windows."""
    writer = Writer(clock)
    for n in range(5):
        await writer.send(answer("p", n, later=True), after=0.01)
    assert batches == [[f"p-{n}"] for n in range(5)] and not writer.batcher.parked
    await writer.send(answer("p", 1), after=0.01)  # earlier than p-4's time: back-dated, right after another
    assert [m.message_id for m, _ in writer.batcher.parked["p"].items] == ["p-1"]
    await writer.send(answer("p", 6, later=True), after=0.01)  # an append goes on past the open window
    assert batches[-1] == ["p-6"]
    await writer.tick(0.11, "p")
    assert batches[-1] == ["p-1"] and not writer.batcher.parked
    await writer.close()
