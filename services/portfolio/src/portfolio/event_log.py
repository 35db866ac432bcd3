"""The append-only event log: optimistic concurrency per stream, a gap-free global position."""

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import orjson

from portfolio.domain import Conflict


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    payload: dict[str, Any]


class StoredEvent(NamedTuple):
    """An event read back from the log (a tuple: a replay creates a million of them)."""

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


class Statement:
    """One SQL statement built from parts, each numbering its own parameters."""

    def __init__(self) -> None:
        self.ctes: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def append_events(statement: Statement, appends: Sequence[PendingAppend]) -> None:
    """Add the appending of every pending stream's events to `statement` (nothing when there are none).

    Positions are taken from one locked row, so they are gap-free and in commit order. The caller appends last,
    just before it commits, so the lock is held only for this statement and the commit (as pyeventsourcing locks its
    table only to insert). A writer that raced on the same stream version fails on the (stream, version) key: see
    `appended`."""
    rows = [(pending.stream_id, pending.expected_version + offset + 1, event.type, json.dumps(event.payload),
             json.dumps(pending.metadata), pending.recorded_at)
            for pending in appends for offset, event in enumerate(pending.events)]
    if not rows:
        return
    count = statement.param(len(rows))
    stream, version, kind, payload, metadata, recorded_at = (statement.param(list(column))
                                                             for column in zip(*rows, strict=True))
    statement.ctes += [
        f"counter AS (UPDATE event_position SET last_position = last_position + {count} RETURNING last_position)",
        f"""appended AS (
               INSERT INTO events (stream_id, version, position, type, payload, metadata, recorded_at)
               SELECT e.stream_id, e.version, (SELECT last_position FROM counter) - {count} + e.n, e.type,
                      e.payload::jsonb, e.metadata::jsonb, e.recorded_at
               FROM unnest({stream}::text[], {version}::int[], {kind}::text[], {payload}::text[], {metadata}::text[],
                           {recorded_at}::timestamptz[])
                    WITH ORDINALITY AS e(stream_id, version, type, payload, metadata, recorded_at, n))""",
        """projected AS (
               INSERT INTO projection_positions (name, position) SELECT 'portfolios', last_position FROM counter
               ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position)"""]


@contextlib.contextmanager
def appended() -> Iterator[None]:
    """Around a statement that appends events: a writer that raced on a stream version gets Conflict."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        raise Conflict("Someone else changed this portfolio at the same moment; try again.") from error


async def read_all(pool: asyncpg.Pool, after: int = 0, batch: int = 20_000, stream_id: str | None = None, *,
                   metadata: bool = True) -> AsyncIterator[list[StoredEvent]]:
    """Every event in position order (optionally of one stream), in batches; the next batch is read while the
    caller works on this one. `metadata=False` leaves it out (a replay does not need it)."""
    columns = "position, stream_id, version, type, payload::text, " + ("metadata::text" if metadata else "NULL")
    where = "position > $1" + ("" if stream_id is None else " AND stream_id = $3")
    query = f"SELECT {columns}, recorded_at FROM events WHERE {where} ORDER BY position LIMIT $2"

    async def fetch(start: int) -> list[asyncpg.Record]:
        return await pool.fetch(query, start, batch, *(() if stream_id is None else (stream_id,)))

    async for rows in _read_ahead(fetch(after), lambda last: fetch(last[0]), batch):
        yield [StoredEvent(r[0], r[1], r[2], r[3], orjson.loads(r[4]), orjson.loads(r[5]) if metadata else {},
                           r[6]) for r in rows]


async def _read_ahead(first: Awaitable[list[asyncpg.Record]],
                      after: Callable[[asyncpg.Record], Awaitable[list[asyncpg.Record]]], batch: int
                      ) -> AsyncIterator[list[asyncpg.Record]]:
    """Batches of rows: `first`, then `after(the last row)` while a batch comes back full; the next batch is read
    while the caller works on this one."""
    rows = await first
    while rows:
        following = asyncio.ensure_future(after(rows[-1])) if len(rows) == batch else None
        try:
            yield rows
        except BaseException:
            if following is not None:
                following.cancel()
            raise
        rows = await following if following is not None else []


@dataclass(frozen=True, slots=True)
class Partition:
    """The streams after `after` up to `last` (inclusive, in stream id order; None: no bound) up to a position: one
    replay worker's share of the log."""

    after: str | None
    last: str | None
    until: int


LAST_VERSION = 2**31 - 1
"""Above every stream version (an int column): a partition starts after every event of its `after` stream."""


async def read_streams(pool: asyncpg.Pool, part: Partition, batch: int = 20_000
                       ) -> AsyncIterator[list[asyncpg.Record]]:
    """The partition's events as stored, rows of (stream_id, type, payload as JSON text, recorded_at, version): each
    stream in version order (streams one after another: a fold per stream does not need the global order), in
    batches along the primary key; the next batch is read while the caller works. The caller decodes the payloads
    (a replay reads a million rows: an object made per row costs about as much as folding the event)."""
    query = ("SELECT stream_id, type, payload::text, recorded_at, version FROM events "
             "WHERE (stream_id, version) > ($1, $2) AND position <= $3"
             + (" AND stream_id <= $5" if part.last is not None else "") + " ORDER BY stream_id, version LIMIT $4")

    async def fetch(stream_id: str, version: int) -> list[asyncpg.Record]:
        return await pool.fetch(query, stream_id, version, part.until, batch,
                                *(() if part.last is None else (part.last,)))

    start = ("", 0) if part.after is None else (part.after, LAST_VERSION)  # "" sorts before every stream id
    async for rows in _read_ahead(fetch(*start), lambda last: fetch(last[0], last[4]), batch):
        yield rows


SAMPLED_EVENTS = 20_000
"""About how many events `partitions` samples to find where to split the streams."""


async def partitions(pool: asyncpg.Pool, count: int) -> list[Partition]:
    """Split the log as it is now into at most `count` runs of whole streams with about as many events each.

    The split points are quantiles of the stream ids of a sample of the table's pages (counting every event would
    itself read the whole log); the runs cover every stream id, so only their balance depends on the sample."""
    until = int(await pool.fetchval("SELECT last_position FROM event_position"))
    if count <= 1 or until == 0:
        return [Partition(None, None, until)] if until else []
    share = min(100.0, SAMPLED_EVENTS * 100.0 / until)
    quantiles = [n / count for n in range(1, count)]
    found = await pool.fetchval(
        "SELECT percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY stream_id) "
        "FROM events TABLESAMPLE SYSTEM ($1) WHERE position <= $3", share, quantiles, until)
    bounds = list(dict.fromkeys(b for b in found or () if b is not None))  # a large stream may hold several
    edges: list[str | None] = [None, *bounds, None]
    return [Partition(after, last, until) for after, last in itertools.pairwise(edges)]


async def count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))
