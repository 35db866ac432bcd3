"""The gateway's read model: bounded, ordered by version, complete per owner, and read-your-writes."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from contracts.portfolios import (
    DeletePortfolio,
    GetPortfolio,
    ListPortfolios,
    PortfolioList,
    PortfolioMetrics,
    PortfolioUpdated,
    PortfolioView,
    RecordTransaction,
    Side,
)
from gateway.bus import Backend
from gateway.domain.read_model import Entry, PortfolioReadModel, Stamp
from gateway.domain.revocations import Revocations
from gateway.errors import ApiError
from gateway.reads import FeedUpdate, PortfolioReads, entry_of
from hypothesis import given
from hypothesis import strategies as st

from contracts import ContractError, Reply

START = datetime(2024, 1, 1, tzinfo=UTC)


def view(portfolio_id: str, version: int, owner_id: str = "alice", *, holdings: str = "1",
         created_minutes: int = 0) -> PortfolioView:
    metrics = PortfolioMetrics(holdings_btc=Decimal(holdings), invested_usd=Decimal(0), cost_basis_usd=Decimal(0),
                               current_value_usd=Decimal(0), realized_pnl_usd=Decimal(0),
                               unrealized_pnl_usd=Decimal(0), net_result_usd=Decimal(0))
    created = START + timedelta(minutes=created_minutes)
    return PortfolioView(portfolio_id=portfolio_id, owner_id=owner_id, name=portfolio_id, cost_basis_method="average",
                         version=version, created_at=created, updated_at=created, metrics=metrics)


def entry(portfolio_id: str, version: int, owner_id: str = "alice", **kwargs: Any) -> Entry:
    return entry_of(view(portfolio_id, version, owner_id, **kwargs), Stamp(version))


def updated(portfolio_view: PortfolioView, at: datetime = START) -> FeedUpdate:
    """The event as the feed reads it off the bus."""
    return FeedUpdate.read(PortfolioUpdated(
        owner_id=portfolio_view.owner_id, portfolio_id=portfolio_view.portfolio_id, version=portfolio_view.version,
        reason="test", portfolio=portfolio_view, metrics=portfolio_view.metrics, occurred_at=at).to_json())


# ------------------------------------------------------------------ the pure model


def test_the_model_keeps_at_most_its_capacity_and_evicts_the_least_recently_read() -> None:
    model = PortfolioReadModel(capacity=3)
    for name in ("a", "b", "c"):
        model.put(entry(name, 1))
    assert model.get("a") is not None  # "a" is now the most recently used
    model.put(entry("d", 1))
    model.put(entry("e", 1))
    assert len(model) == 3
    assert model.get("b") is None and model.get("c") is None
    assert {name for name in ("a", "d", "e") if model.get(name)} == {"a", "d", "e"}


@given(st.lists(st.tuples(st.integers(1, 6), st.booleans(), st.integers(0, 5)), min_size=1, max_size=30))
def test_an_older_view_never_overwrites_a_newer_one_whatever_the_order(
        arrivals: list[tuple[int, bool, int]]) -> None:
    model = PortfolioReadModel(capacity=10)
    for version, from_event, second in arrivals:
        stamp = Stamp(version, from_event, START + timedelta(seconds=second) if from_event else Stamp(0).occurred_at)
        model.put(Entry("p", "alice", stamp, START, f"{version}".encode()))
    newest = max(Stamp(v, e, START + timedelta(seconds=s) if e else Stamp(0).occurred_at) for v, e, s in arrivals)
    held = model.get("p")
    assert held is not None and held.stamp == newest and held.body == f"{newest.version}".encode()


def test_at_one_version_an_event_beats_a_read_and_a_later_event_beats_an_earlier_one() -> None:
    model = PortfolioReadModel(capacity=10)
    assert model.put(Entry("p", "alice", Stamp(3), START, b"read"))
    assert model.put(Entry("p", "alice", Stamp(3, True, START), START, b"tick 1"))
    assert not model.put(Entry("p", "alice", Stamp(3), START, b"read again"))
    assert model.put(Entry("p", "alice", Stamp(3, True, START + timedelta(hours=1)), START, b"tick 2"))
    assert not model.put(Entry("p", "alice", Stamp(3, True, START), START, b"tick 1 redelivered"))
    assert not model.put(Entry("p", "alice", Stamp(2, True, START + timedelta(days=1)), START, b"older version"))
    held = model.get("p")
    assert held is not None and held.body == b"tick 2"


def test_a_deleted_portfolio_stays_deleted_when_an_older_event_arrives_late() -> None:
    model = PortfolioReadModel(capacity=10)
    model.put_owner_list("alice", [entry("p", 4), entry("q", 1, created_minutes=1)])
    model.put(Entry("p", "alice", Stamp(5, True, START), None, None))
    model.put(entry("p", 4))
    held = model.get("p")
    assert held is not None and held.deleted
    assert [e.portfolio_id for e in model.owner_list("alice") or []] == ["q"]


def test_an_owners_list_is_complete_once_loaded_and_follows_creations_until_an_eviction() -> None:
    model = PortfolioReadModel(capacity=4)
    assert model.owner_list("alice") is None
    model.put_owner_list("alice", [entry("b", 1, created_minutes=2), entry("a", 1, created_minutes=1)])
    assert [e.portfolio_id for e in model.owner_list("alice") or []] == ["a", "b"]  # oldest first
    model.put(entry("c", 1, created_minutes=3))  # created later: an event
    assert [e.portfolio_id for e in model.owner_list("alice") or []] == ["a", "b", "c"]
    model.put_owner_list("bob", [])
    assert model.owner_list("bob") == []
    for name in ("x", "y"):
        model.put(entry(name, 1, owner_id="carol"))
    assert model.owner_list("alice") is None  # one of alice's entries made room: her list must be read again
    assert model.owner_list("bob") == []


def test_clearing_the_model_forgets_every_entry_and_every_complete_list() -> None:
    model = PortfolioReadModel(capacity=4)
    model.put_owner_list("alice", [entry("a", 1)])
    generation = model.generation
    model.clear()
    assert len(model) == 0 and model.owner_list("alice") is None and model.generation == generation + 1


def test_revocations_are_forgotten_once_the_tokens_they_name_have_expired() -> None:
    revocations = Revocations()
    revocations.revoke(START + timedelta(minutes=15), token_id="jti-1")
    revocations.revoke(START + timedelta(minutes=30), session_id="session-1")
    assert revocations.token_revoked("jti-1") and revocations.session_revoked("session-1")
    assert not revocations.token_revoked("jti-2") and not revocations.session_revoked(None)
    revocations.forget_expired(START + timedelta(minutes=20))
    assert not revocations.token_revoked("jti-1") and revocations.session_revoked("session-1")


# ------------------------------------------------------------------ reads over the model


class CountingBus:
    """Stands in for the portfolio service's request/reply: answers from a dict and counts every request."""

    connected = True

    def __init__(self, views: dict[str, PortfolioView]) -> None:
        self.views = views
        self.requests: list[Any] = []
        self.delay = 0.0

    async def call(self, request: Any) -> Reply:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        if isinstance(request, GetPortfolio):
            found = self.views.get(request.portfolio_id)
            if found is None or found.owner_id != request.owner_id:
                return Reply.failure(request, "not_found", f"No portfolio {request.portfolio_id} was found.")
            return Reply.success(request, found)
        if isinstance(request, ListPortfolios):
            owned = sorted((v for v in self.views.values() if v.owner_id == request.owner_id),
                           key=lambda v: (v.created_at, v.portfolio_id))
            return Reply.success(request, PortfolioList(items=owned[request.offset:request.offset + request.limit],
                                                        total=len(owned), offset=request.offset, limit=request.limit))
        raise AssertionError(f"unexpected {request}")


def reads_over(bus: CountingBus, wait: float = 0.5) -> PortfolioReads:
    reads = PortfolioReads(Backend(bus), capacity=100, write_wait_seconds=wait)  # type: ignore[arg-type]
    reads.backend.watcher = reads
    reads.go_live()
    return reads


def version_of(body: bytes) -> int:
    return PortfolioView.model_validate_json(body).version


async def test_a_cold_entry_is_read_over_request_reply_once_and_kept() -> None:
    bus = CountingBus({"p": view("p", 2)})
    reads = reads_over(bus)
    bodies = await asyncio.gather(*(reads.portfolio("alice", "p") for _ in range(5)))
    assert {version_of(body) for body in bodies} == {2}
    assert await reads.portfolio("alice", "p") == bodies[0]
    assert len(bus.requests) == 1, "concurrent cold reads share one request, later reads none"


async def test_an_event_is_served_without_a_request_and_another_owner_gets_404() -> None:
    bus = CountingBus({})
    reads = reads_over(bus)
    reads.apply_update(updated(view("p", 7, holdings="3")))
    assert version_of(await reads.portfolio("alice", "p")) == 7
    with pytest.raises(ApiError) as refused:
        await reads.portfolio("mallory", "p")
    assert refused.value.status == 404 and refused.value.details == {"portfolio_id": "p"}
    assert bus.requests == []


async def test_nothing_is_kept_while_the_feed_is_down() -> None:
    bus = CountingBus({"p": view("p", 1)})
    reads = reads_over(bus)
    reads.apply_update(updated(view("p", 1)))
    reads.go_cold()
    reads.apply_update(updated(view("p", 2)))
    assert len(reads.model) == 0
    await reads.portfolio("alice", "p")
    await reads.portfolio("alice", "p")
    assert len(bus.requests) == 2, "a cold model reads every time and keeps nothing"


async def test_a_read_after_a_write_waits_for_the_writes_version_from_the_feed() -> None:
    bus = CountingBus({})
    reads = reads_over(bus, wait=2)
    reads.apply_update(updated(view("p", 3)))
    write = RecordTransaction(owner_id="alice", portfolio_id="p", side=Side.BUY, amount_btc=Decimal(1), at=START)
    reads.answered(write, Reply(ok=True, result={}, portfolio_version=4), reads.mark())
    reading = asyncio.create_task(reads.portfolio("alice", "p"))
    await asyncio.sleep(0.05)
    assert not reading.done(), "version 3 is older than the write the user saw answered"
    reads.apply_update(updated(view("p", 4)))
    assert version_of(await reading) == 4
    assert bus.requests == []


async def test_a_read_asking_for_a_version_a_client_heard_of_waits_for_it_then_asks_the_service() -> None:
    """The dashboard hears portfolio.updated itself and asks for at least its version: this copy's feed may not have
    applied that event yet."""
    bus = CountingBus({"p": view("p", 5)})
    reads = reads_over(bus, wait=2)
    reads.apply_update(updated(view("p", 3)))
    reading = asyncio.create_task(reads.portfolio("alice", "p", at_least=4))
    await asyncio.sleep(0.05)
    assert not reading.done()
    reads.apply_update(updated(view("p", 4)))
    assert version_of(await reading) == 4 and bus.requests == []
    late = reads_over(bus, wait=0.05)
    late.apply_update(updated(view("p", 3)))
    assert version_of(await late.portfolio("alice", "p", at_least=5)) == 5
    assert len(bus.requests) == 1, "the event was late: the service was asked"
    assert version_of(await late.portfolio("alice", "p")) == 5


async def test_a_read_after_a_write_asks_the_service_when_the_event_is_late() -> None:
    bus = CountingBus({"p": view("p", 4)})
    reads = reads_over(bus, wait=0.05)
    reads.apply_update(updated(view("p", 3)))
    write = RecordTransaction(owner_id="alice", portfolio_id="p", side=Side.BUY, amount_btc=Decimal(1), at=START)
    reads.answered(write, Reply(ok=True, result={}, portfolio_version=4), reads.mark())
    assert version_of(await reads.portfolio("alice", "p")) == 4
    assert len(bus.requests) == 1
    assert version_of(await reads.portfolio("alice", "p")) == 4
    assert len(bus.requests) == 1, "the answer was kept"


async def test_the_list_is_loaded_once_then_follows_creations_and_deletions() -> None:
    bus = CountingBus({"a": view("a", 1, created_minutes=1), "b": view("b", 1, created_minutes=2),
                       "z": view("z", 1, owner_id="bob")})
    reads = reads_over(bus)
    first = await reads.portfolios("alice", 0, 100)
    assert first.total == 2 and [v["portfolio_id"] for v in _items(first.body)] == ["a", "b"]
    reads.apply_update(updated(view("c", 1, created_minutes=3)))
    reads.answered(DeletePortfolio(owner_id="alice", portfolio_id="a"), Reply(ok=True, portfolio_version=2),
                   reads.mark())
    second = await reads.portfolios("alice", 1, 1)
    assert second.total == 2 and [v["portfolio_id"] for v in _items(second.body)] == ["c"]
    assert sum(isinstance(r, ListPortfolios) for r in bus.requests) == 1
    assert (await reads.portfolios("dave", 0, 100)).body == b"[]"


async def test_a_load_begun_before_the_feed_dropped_is_not_kept() -> None:
    bus = CountingBus({"p": view("p", 1)})
    bus.delay = 0.05
    reads = reads_over(bus)
    reading = asyncio.create_task(reads.portfolio("alice", "p"))
    await asyncio.sleep(0.01)
    reads.go_cold()
    reads.go_live()
    await reading
    assert len(reads.model) == 0


def _items(body: bytes) -> list[dict[str, Any]]:
    return list(orjson.loads(body))


# ------------------------------------------------------------------ the feed's reading of portfolio.updated


def test_an_event_is_served_as_the_bytes_the_contract_would_write() -> None:
    """The feed keeps the view as sent instead of validating it again: the body is what PortfolioView writes."""
    sent = view("p", 5, holdings="0.12345678").model_copy(update={"name": "Épargne 😀 \u2028 \"quoted\" </b>",
                                                                  "goal_usd": Decimal("1E+5")})
    entry = updated(sent, at=START + timedelta(seconds=1)).entry()
    assert entry.body == sent.model_dump_json().encode()
    assert entry.created_at == sent.created_at and entry.stamp == Stamp(5, True, START + timedelta(seconds=1))


def test_a_deletion_is_kept_as_a_tombstone() -> None:
    deleted = FeedUpdate.read(PortfolioUpdated(owner_id="alice", portfolio_id="p", version=9, reason="deleted",
                                               deleted=True).to_json())
    assert deleted.entry().deleted and deleted.entry().stamp.version == 9


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"owner_id": "alice", "portfolio_id": "p", "occurred_at": "2024-01-01T00:00:00Z"}',  # no version
    b'{"owner_id": "alice", "portfolio_id": "p", "version": 1, "occurred_at": "2024-01-01T00:00:00"}',  # naive
    b'{"owner_id": "alice", "portfolio_id": "p", "version": 1, "occurred_at": "2024-01-01T00:00:00Z", '
    b'"schema_version": 2}',
    b'{"owner_id": "alice", "portfolio_id": "p", "version": 1, "occurred_at": "2024-01-01T00:00:00Z", '
    b'"portfolio": {"name": "no created_at"}}',
    b'{"owner_id": "alice", "portfolio_id": "p", "version": 1, "occurred_at": "2024-01-01T00:00:00Z", '
    b'"portfolio": {"created_at": "yesterday"}}',
])
def test_an_unreadable_event_is_a_contract_error(body: bytes) -> None:
    with pytest.raises(ContractError, match="PortfolioUpdated refused"):
        FeedUpdate.read(body)
