"""Benchmark: one price tick with 10,000 portfolios (100,000 behind a flag): the time until every portfolio's figures
are current and its portfolio.updated is published, beside a bare SQL UPDATE of the same rows (issue 12).

The portfolios are seeded the fastest realistic way: their events (created, then a few market-priced buys and a
sell at real 2024 candle opens) are COPied into the event log and the service's own replay builds the projections,
with the daily opens and the latest price stored as the running service would have them.

`python -m bench.tick_fanout [--portfolios 10000 [100000 …]]`
"""

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aio_pika
import asyncpg
from contracts.portfolios import PortfolioUpdated
from contracts.prices import PriceTicked
from portfolio import repository as repo
from portfolio.db import create_pool
from portfolio.domain import events as ev
from portfolio.handlers import PortfolioService
from portfolio.market_data import PriceSource
from portfolio.replay import rebuild, write

from bench.common import Figure, plain, write_results
from bench.market_trades import SATOSHI, hourly_opens, market_hours
from bench.stack import running_stack
from contracts import names

TRADES_PER_PORTFOLIO = 4
SOURCE = "csv:btc-usd-hourly-2024.csv.gz"


def event_rows(portfolios: int, opens: dict[int, Decimal], rng: random.Random) -> list[tuple]:
    """Per portfolio: created, then three buys and a sell (recorded, then priced at the open of its hour)."""
    hours, rows, position = market_hours(opens), [], 0
    recorded_at = datetime.now(UTC) - timedelta(days=1)
    meta = json.dumps({"message_id": "m", "correlation_id": "c", "causation_id": None,
                       "occurred_at": recorded_at.isoformat(), "schema_version": 1})
    for n in range(portfolios):
        portfolio_id = uuid.uuid4().hex
        stream = ev.stream_of(portfolio_id)
        events: list[tuple[str, dict]] = [(ev.PORTFOLIO_CREATED, {
            "portfolio_id": portfolio_id, "owner_id": f"bench-owner-{n}", "name": "tick bench",
            "method": rng.choice(["average", "fifo"]), "goal_usd": None})]
        instants = sorted(rng.choice(hours) + rng.randrange(3600) for _ in range(TRADES_PER_PORTFOLIO))
        held = 0
        for sequence, instant in enumerate(instants, start=1):
            selling = sequence == TRADES_PER_PORTFOLIO
            amount = rng.randint(1, held // 2) if selling else rng.randint(100_000, 5_000_000)
            held += -amount if selling else amount
            transaction_id = f"{portfolio_id}-{sequence}"
            hour = instant - instant % 3600
            events += [(ev.TRANSACTION_RECORDED, {
                "transaction_id": transaction_id, "sequence": sequence, "side": "sell" if selling else "buy",
                "amount_btc": str(Decimal(amount) * SATOSHI), "at": datetime.fromtimestamp(instant, UTC).isoformat(),
                "fee_usd": str(Decimal(rng.randint(0, 500)) / 100), "price_usd": None, "note": None,
                "price_request_id": uuid.uuid4().hex}),
                (ev.TRANSACTION_PRICED, {"transaction_id": transaction_id, "price_usd": str(opens[hour]),
                                         "hour": hour, "source": SOURCE})]
        for version, (kind, payload) in enumerate(events, start=1):
            position += 1
            rows.append((stream, version, position, kind, json.dumps(payload), meta, recorded_at))
    return rows


async def seed(database_url: str, portfolios: int, opens: dict[int, Decimal], newest: int, latest: Decimal
               ) -> float:
    """Fill the log, the daily opens and the latest price, then replay; returns the seconds it took."""
    started = time.perf_counter()
    rows = event_rows(portfolios, opens, random.Random(portfolios))
    pool = await create_pool(plain(database_url))
    try:
        async with pool.acquire() as connection:
            await connection.copy_records_to_table("daily_opens", columns=("day", "open_usd"), records=[
                (datetime.fromtimestamp(hour, UTC), price) for hour, price in opens.items() if hour % 86400 == 0])
            await repo.save_market(connection, newest, latest, datetime.fromtimestamp(newest + 3600, UTC))
            await connection.copy_records_to_table("events", records=rows, columns=(
                "stream_id", "version", "position", "type", "payload", "metadata", "recorded_at"))
            await connection.execute("UPDATE event_position SET last_position = $1", len(rows))
            await connection.execute("INSERT INTO projection_positions (name, position) VALUES ('portfolios', $1)",
                                     len(rows))
        await write(pool, await rebuild(PortfolioService(pool, PriceSource(None))), None)
        repairs = await pool.fetchval("SELECT count(*) FROM portfolios WHERE repair_from IS NOT NULL")
        assert repairs == 0, f"{repairs} portfolios lack midnight prices; the running service would repair them"
    finally:
        await pool.close()
    return time.perf_counter() - started


async def settled(connection: asyncpg.Connection, timeout: float = 300) -> None:
    """Wait until the service has nothing left to do: no IRR due, the outbox empty."""
    deadline = time.monotonic() + timeout
    while await connection.fetchval("SELECT (SELECT count(*) FROM portfolios WHERE irr_due) "
                                    "+ (SELECT count(*) FROM outbox)"):
        if time.monotonic() > deadline:
            raise TimeoutError("the portfolio service did not settle")
        await asyncio.sleep(0.2)


async def measure_tick(rabbit_url: str, database_url: str, portfolios: int, tick: PriceTicked
                       ) -> tuple[float, float]:
    """(seconds until the first, and until the last, portfolio.updated of the tick arrives)."""
    connection = await asyncpg.connect(plain(database_url))
    broker = await aio_pika.connect(rabbit_url)
    try:
        await settled(connection)
        channel = await broker.channel()
        exchange = await channel.declare_exchange(names.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, names.PORTFOLIO_UPDATED_ANY_OWNER)
        moved: set[str] = set()
        first: float | None = None
        done = asyncio.get_running_loop().create_future()

        async def on_update(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal first
            update = PortfolioUpdated.from_json(message.body)
            if update.reason == "price_ticked" and update.metrics.latest_price_usd == tick.price_usd:
                first = first or time.perf_counter()
                moved.add(update.portfolio_id)
                if len(moved) == portfolios and not done.done():
                    done.set_result(time.perf_counter())

        await queue.consume(on_update, no_ack=True)
        started = time.perf_counter()
        await exchange.publish(aio_pika.Message(tick.to_json(), message_id=tick.message_id,
                                                content_type="application/json",
                                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                               routing_key=names.PRICE_TICKED)
        finished = await asyncio.wait_for(done, 600)
        current = await connection.fetchval(
            "SELECT count(*) FROM portfolios WHERE NOT irr_due AND metrics->>'latest_price_usd' = $1",
            str(tick.price_usd))
        assert current == portfolios, f"only {current} of {portfolios} portfolios carry the tick's figures"
        return (first or finished) - started, finished - started
    finally:
        await broker.close()
        await connection.close()


async def bare_update(database_url: str, price: Decimal) -> float:
    """The floor: one UPDATE that writes a new value into every portfolio's metrics, committed."""
    connection = await asyncpg.connect(plain(database_url))
    try:
        started = time.perf_counter()
        await connection.execute(
            "UPDATE portfolios SET metrics = metrics || jsonb_build_object('latest_price_usd', $1::numeric::text, "
            "'current_value_usd', (holdings_btc * $1::numeric)::text) WHERE NOT deleted", price)
        return time.perf_counter() - started
    finally:
        await connection.close()


def run(portfolios: int) -> tuple[float, float, float, float]:
    opens = hourly_opens()
    newest = max(opens)
    latest = opens[newest]  # the price the portfolios were last moved to; the tick moves 1 % above it
    tick = PriceTicked(hour=newest + 3600, price_usd=(latest * Decimal("1.01")).quantize(Decimal("0.01")),
                       open_usd=latest, as_of=datetime.fromtimestamp(newest + 7200, UTC))
    with running_stack("price") as stack:
        loop = asyncio.new_event_loop()
        try:
            database_url = stack.database_urls["portfolio"]
            seeding = loop.run_until_complete(seed(database_url, portfolios, opens, newest, latest))
            stack.start("portfolio", timeout=300)
            first, last = loop.run_until_complete(measure_tick(stack.rabbit_url, database_url, portfolios, tick))
            floor = loop.run_until_complete(bare_update(database_url, tick.price_usd + 1))
        finally:
            loop.close()
    return seeding, first, last, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portfolios", type=int, nargs="+", default=[10_000, 100_000],
                        help="sizes to measure, one stack each")
    figures, seeded = [], []
    for portfolios in parser.parse_args().portfolios:
        seeding, first, last, floor = run(portfolios)
        seeded.append(f"{portfolios:,} in {seeding:.1f} s")
        figures += [
            Figure(f"tick → all {portfolios:,} portfolio.updated received", last, "s",
                   "bare SQL UPDATE of the same rows", floor, "report (the 'before' figure)", True),
            Figure(f"tick → first portfolio.updated ({portfolios:,} portfolios)", first, "s",
                   "bare SQL UPDATE of the same rows", floor, "report", True)]
    write_results("tick_fanout", figures,
                  f"portfolios of {TRADES_PER_PORTFOLIO} market-priced trades (3 buys, 1 sell; average or fifo), seeded "
                  f"by COPY into the event log and the service's replay ({', '.join(seeded)}); one price.ticked "
                  "published on the events exchange, timed until a queue bound to portfolio.updated has received a "
                  "price_ticked update at the new price for every portfolio, then checked in SQL (figures at the new "
                  "price, no IRR due). Baseline: one UPDATE writing a new price and value into every portfolio's "
                  "metrics, committed, timed from the client" f"; load average at the end {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} cores (other work shares the machine)")


if __name__ == "__main__":
    main()
