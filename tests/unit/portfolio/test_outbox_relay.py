"""The outbox relay: a lone price request leaves at once; those committed soon after leave together, as one."""

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from contracts.prices import PriceRequested
from portfolio import messaging
from portfolio import repository as repo

from contracts import decode, names

AT = datetime(2024, 3, 1, 12, tzinfo=UTC)


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, body: bytes, *, routing_key: str, **_: object) -> None:
        self.published.append((routing_key, body))


def row(row_id: int, message: PriceRequested) -> repo.OutboxRow:
    return repo.OutboxRow(row_id, names.EVENTS_EXCHANGE, message.routing_key, message.message_id,
                          message.correlation_id, message.to_json())


@pytest.fixture
def deleted(monkeypatch) -> list[int]:
    gone: list[int] = []

    async def delete_outbox(_pool: object, ids: list[int]) -> None:
        gone.extend(ids)

    monkeypatch.setattr(messaging.repo, "delete_outbox", delete_outbox)
    return gone


async def settle(relay: messaging.OutboxRelay) -> None:
    await asyncio.gather(*relay.publishing)


async def test_requests_committed_within_the_linger_leave_as_one_message_and_their_rows_are_deleted(deleted) -> None:
    broker = FakeBroker()
    relay = messaging.OutboxRelay(SimpleNamespace(pool=None), broker, linger_seconds=3600)  # type: ignore[arg-type]
    requests = [PriceRequested(transaction_id=f"t{n}", portfolio_id=f"p{n}", at=AT) for n in range(4)]

    relay.committed([row(1, requests[0])])  # nothing left lately: at once, as it is
    await settle(relay)
    assert [decode(PriceRequested, body) for _, body in broker.published] == [requests[0]]

    relay.committed([row(2, requests[1])])
    relay.committed([row(3, requests[2]), row(4, requests[3])])
    await settle(relay)
    assert len(broker.published) == 1, "the next ones wait for the end of the linger"
    relay.flush_lingering()  # the linger's timer
    await settle(relay)
    key, body = broker.published[1]
    batch = decode(PriceRequested, body)
    assert key == names.PRICE_REQUESTED and batch.portfolio_id is None
    assert [(i.request_id, i.portfolio_id) for i in batch.items] == \
        [(r.message_id, r.portfolio_id) for r in requests[1:]]
    assert deleted == [1, 2, 3, 4]


async def test_an_unreadable_row_leaves_as_it_is(deleted) -> None:
    broker = FakeBroker()
    relay = messaging.OutboxRelay(SimpleNamespace(pool=None), broker)  # type: ignore[arg-type]
    fine = PriceRequested(transaction_id="t", portfolio_id="p", at=AT)
    unreadable = repo.OutboxRow(2, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED, "m", None, b"not json")
    relay.committed([row(1, fine), unreadable])
    await settle(relay)
    assert sorted(body for _, body in broker.published) == sorted([fine.to_json(), b"not json"])
    assert deleted == [1, 2]
