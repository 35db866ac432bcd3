"""The only code that reads and writes the price tables: candles, answered requests and the outbox."""

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg
from contracts.envelope import Message

from price.domain import CandleRow

CANDLE_COLUMNS = ("hour", "open", "high", "low", "close", "volume", "source", "provisional")
BOUNDS_TTL_SECONDS = 2.0
NEWEST_FINISHED = "SELECT * FROM candles WHERE NOT provisional ORDER BY hour DESC LIMIT 1"


@dataclass(frozen=True, slots=True)
class StoreResult:
    received: int
    inserted: int
    newest: CandleRow | None
    newest_changed: bool


def _candle(record: asyncpg.Record) -> CandleRow:
    return CandleRow(record["hour"], record["open"], record["high"], record["low"], record["close"], record["volume"],
                     record["provisional"])


class CandleStore:
    """Candles in Postgres, and every finished candle (which never changes) in memory.

    A provisional candle (its hour still trading) is stored, so that its open answers price_at, but it is not
    the latest price and is replaced when its hour is stored again."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[int, CandleRow] = {}
        self._bounds: tuple[int | None, int | None] = (None, None)
        self._bounds_read_at = 0.0
        self.outbox_written = asyncio.Event()
        """Set when this process commits an outbox row, so its relay publishes it at once instead of at its poll."""

    async def load(self) -> int:
        """Read every finished candle into memory (a year is 8,784), so that answers read none; an hour stored
        later (by the sync, an import or another copy) is read once, at its first use."""
        records = await self.pool.fetch("SELECT * FROM candles WHERE NOT provisional")
        self._cache.update((record["hour"], _candle(record)) for record in records)
        return len(records)

    async def bounds(self) -> tuple[int | None, int | None]:
        """(first hour, newest finished hour) of the stored candles, cached for a moment."""
        if time.monotonic() - self._bounds_read_at > BOUNDS_TTL_SECONDS:
            record = await self.pool.fetchrow(
                "SELECT min(hour) AS first, max(hour) FILTER (WHERE NOT provisional) AS last FROM candles")
            self._bounds = (record["first"], record["last"])
            self._bounds_read_at = time.monotonic()
        return self._bounds

    async def candle(self, hour: int) -> CandleRow | None:
        cached = self._cache.get(hour)
        if cached is not None:
            return cached
        record = await self.pool.fetchrow("SELECT * FROM candles WHERE hour = $1", hour)
        if record is None:
            return None
        candle = _candle(record)
        if not candle.provisional:
            self._cache[hour] = candle
        return candle

    async def candles(self, hours: list[int]) -> dict[int, CandleRow]:
        """The stored candles of many hours, in one query (finished ones from the cache)."""
        found = {hour: self._cache[hour] for hour in hours if hour in self._cache}
        missing = [hour for hour in hours if hour not in found]
        if missing:
            for record in await self.pool.fetch("SELECT * FROM candles WHERE hour = ANY($1::bigint[])", missing):
                candle = _candle(record)
                found[candle.hour] = candle
                if not candle.provisional:
                    self._cache[candle.hour] = candle
        return found

    async def latest(self) -> CandleRow | None:
        """The newest finished candle: its close is the latest price, as of the end of its hour."""
        record = await self.pool.fetchrow(NEWEST_FINISHED)
        return None if record is None else _candle(record)

    async def between(self, start: int, end: int, step: str = "hour") -> list[CandleRow]:
        """Candles with start <= hour <= end; at step "day" only those that open a UTC day."""
        day_filter = "AND hour % 86400 = 0" if step == "day" else ""
        records = await self.pool.fetch(
            f"SELECT * FROM candles WHERE hour BETWEEN $1 AND $2 {day_filter} ORDER BY hour", start, end
        )
        return [_candle(r) for r in records]

    async def store(
        self, rows: Iterable[CandleRow], source: str, tick: Callable[[CandleRow], Message] | None = None
    ) -> StoreResult:
        """COPY rows into a temporary table and keep the new ones; a finished hour is never changed, a provisional
        one is replaced. `inserted` counts the new and the replaced rows.

        When the newest finished candle changes, `tick(newest)` is written to the outbox in the same transaction.
        """
        records = [(r.hour, r.open, r.high, r.low, r.close, r.volume, source, r.provisional) for r in rows]
        async with self.pool.acquire() as connection, connection.transaction():
            before = await connection.fetchval("SELECT max(hour) FROM candles WHERE NOT provisional")
            await connection.execute(
                "CREATE TEMPORARY TABLE incoming_candles (LIKE candles INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            await connection.copy_records_to_table("incoming_candles", records=records, columns=CANDLE_COLUMNS)
            status = await connection.execute(
                """INSERT INTO candles SELECT * FROM incoming_candles ON CONFLICT (hour) DO UPDATE
                   SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
                       volume = EXCLUDED.volume, source = EXCLUDED.source, provisional = EXCLUDED.provisional
                   WHERE candles.provisional"""
            )
            inserted = int(status.split()[-1])
            newest_record = await connection.fetchrow(NEWEST_FINISHED)
            newest = None if newest_record is None else _candle(newest_record)
            changed = newest is not None and (before is None or newest.hour > before)
            if changed and tick is not None:
                await self._enqueue(connection, tick(newest))
        if changed and tick is not None:
            self.outbox_written.set()
        self._bounds_read_at = 0.0
        return StoreResult(len(records), inserted, newest, changed)

    async def record_answers(self, answers: dict[str, Message]) -> tuple[dict[str, tuple[str, bytes]], int]:
        """Remember the answers to requests, in one statement; where a request was answered before (a
        redelivery, or another copy first), that first answer wins and is returned instead. Also returns how many
        were answered before."""
        ids = list(answers)
        records = await self.pool.fetch(
            """INSERT INTO answered_requests (message_id, routing_key, body)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
               ON CONFLICT (message_id) DO UPDATE SET message_id = EXCLUDED.message_id
               RETURNING message_id, routing_key, body, xmax <> 0 AS answered_before""",
            ids, [a.routing_key for a in answers.values()], [a.to_json() for a in answers.values()])
        stored = {r["message_id"]: (r["routing_key"], bytes(r["body"])) for r in records}
        return stored, sum(1 for r in records if r["answered_before"])

    @staticmethod
    async def _enqueue(connection: asyncpg.Connection, message: Message) -> None:
        await connection.execute(
            "INSERT INTO outbox (routing_key, message_id, body) VALUES ($1, $2, $3)",
            message.routing_key, message.message_id, message.to_json(),
        )

    async def drain_outbox(self, publish: Callable[[str, str, bytes], object], limit: int = 200) -> int:
        """Publish pending outbox rows (oldest first) and delete them; SKIP LOCKED makes copies share safely."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, routing_key, message_id, body FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            for row in rows:
                await publish(row["routing_key"], row["message_id"], bytes(row["body"]))  # type: ignore[misc]
            if rows:
                await connection.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return len(rows)

    async def outbox_depth(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox"))
