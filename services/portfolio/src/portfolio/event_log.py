"""The append-only event log: optimistic concurrency per stream, a gap-free global position."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from portfolio.domain import Conflict


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    stream_id: str
    version: int
    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """Events for one stream, to be appended after `expected_version` when the unit of work commits."""

    stream_id: str
    expected_version: int
    events: Sequence[NewEvent]
    metadata: dict[str, Any]
    recorded_at: datetime


async def append_all(connection: asyncpg.Connection, appends: Sequence[PendingAppend]) -> int:
    """Append every pending stream's events; returns the last position (0 if nothing was appended).

    Positions are taken from one locked row, so they are gap-free and in commit order. The caller appends last,
    just before it commits, so the lock is held only for these statements and the commit (as pyeventsourcing
    locks its table only to insert). A writer that raced on the same stream version gets Conflict."""
    total = sum(len(a.events) for a in appends)
    if not total:
        return 0
    last = await connection.fetchval(
        "UPDATE event_position SET last_position = last_position + $1 RETURNING last_position", total)
    position = last - total
    rows = []
    for pending in appends:
        metadata = json.dumps(pending.metadata)
        for offset, event in enumerate(pending.events):
            position += 1
            rows.append((pending.stream_id, pending.expected_version + offset + 1, position, event.type,
                         json.dumps(event.payload), metadata, pending.recorded_at))
    try:
        await connection.executemany(
            "INSERT INTO events (stream_id, version, position, type, payload, metadata, recorded_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)", rows)
    except asyncpg.UniqueViolationError as error:
        raise Conflict("Someone else changed this portfolio at the same moment; try again.") from error
    await connection.execute(
        "INSERT INTO projection_positions (name, position) VALUES ('portfolios', $1) "
        "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", last)
    return int(last)


async def read_all(pool: asyncpg.Pool, after: int = 0, batch: int = 20_000,
                   stream_id: str | None = None) -> AsyncIterator[list[StoredEvent]]:
    """Every event in position order (optionally of one stream), in batches."""
    while True:
        if stream_id is None:
            rows = await pool.fetch(
                "SELECT position, stream_id, version, type, payload::text, metadata::text, recorded_at FROM events "
                "WHERE position > $1 ORDER BY position LIMIT $2", after, batch)
        else:
            rows = await pool.fetch(
                "SELECT position, stream_id, version, type, payload::text, metadata::text, recorded_at FROM events "
                "WHERE stream_id = $3 AND position > $1 ORDER BY position LIMIT $2", after, batch, stream_id)
        if not rows:
            return
        yield [StoredEvent(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6]) for r in rows]
        after = rows[-1][0]


async def count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))
