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


async def append(connection: asyncpg.Connection, stream_id: str, expected_version: int,
                 events: Sequence[NewEvent], metadata: dict[str, Any], recorded_at: datetime) -> int:
    """Append after `expected_version`; returns the last position. Positions are taken under a row lock, so
    they are gap-free and in commit order. A concurrent writer of the same stream gets Conflict."""
    if not events:
        return 0
    last = await connection.fetchval(
        "UPDATE event_position SET last_position = last_position + $1 RETURNING last_position", len(events))
    first = last - len(events) + 1
    rows = [(stream_id, expected_version + i + 1, first + i, e.type, json.dumps(e.payload), json.dumps(metadata),
             recorded_at) for i, e in enumerate(events)]
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
