"""The price service answers price.requested over the real broker, exactly, once, and survives bad input."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

from contracts.prices import PriceRequested, PriceResolved, PriceUnavailable, WantedPrice
from price.main import running

from contracts import decode, names
from tests.support.bus import dead_letters, listening, publish_raw
from tests.support.fake_cryptocompare import synthetic_open

FIRST_2024_HOUR = 1704067200  # the shared CSV's row with open 42288.58


def request_at(unix: int, transaction_id: str = "tx-1") -> PriceRequested:
    return PriceRequested(transaction_id=transaction_id, portfolio_id="p-1", at=datetime.fromtimestamp(unix, UTC))


async def ask(rabbit_url: str, request: PriceRequested) -> None:
    await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED, request.to_json(),
                      message_id=request.message_id)


async def test_price_inside_an_hour_resolves_to_that_hours_exact_open(rabbit_url, price_app) -> None:
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        request = request_at(FIRST_2024_HOUR + 1800)
        await ask(rabbit_url, request)
        answer = decode(PriceResolved, (await answers.next()).body)
    assert answer.price_usd == Decimal("42288.58")
    assert answer.hour == FIRST_2024_HOUR
    assert answer.transaction_id == "tx-1"
    assert answer.correlation_id == request.correlation_id
    assert answer.causation_id == request.message_id


async def test_time_before_the_data_is_unavailable_with_reason(rabbit_url, price_app) -> None:
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await ask(rabbit_url, request_at(1500000000))
        answer = decode(PriceUnavailable, (await answers.next()).body)
    assert answer.reason == "before_data"
    assert "before the first stored" in answer.detail


async def test_time_in_the_future_is_unavailable_with_reason(rabbit_url, price_app) -> None:
    future = int(datetime.now(UTC).timestamp()) + 86400
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await ask(rabbit_url, request_at(future))
        answer = decode(PriceUnavailable, (await answers.next()).body)
    assert answer.reason == "in_future"


async def test_missing_hour_inside_the_range_is_fetched_from_the_provider_and_stored(
    remove_candles, rabbit_url, price_app, fake_provider
) -> None:
    gap = FIRST_2024_HOUR + 100 * 3600
    await remove_candles(gap, gap + 3600)
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await ask(rabbit_url, request_at(gap + 59))
        answer = decode(PriceResolved, (await answers.next()).body)
    assert answer.price_usd == synthetic_open(gap)
    assert fake_provider.fake.requests, "the provider was asked"
    stored = await price_app.service.store.pool.fetchval("SELECT open FROM candles WHERE hour = $1", gap)
    assert stored == synthetic_open(gap)


async def test_provider_down_for_a_gap_is_provider_unavailable(remove_candles, rabbit_url, price_app, fake_provider) -> None:
    gap = FIRST_2024_HOUR + 200 * 3600
    await remove_candles(gap, gap + 3600)
    fake_provider.fake.fail_with_429 = 100
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await ask(rabbit_url, request_at(gap))
        answer = decode(PriceUnavailable, (await answers.next()).body)
    assert answer.reason == "provider_unavailable"


async def test_duplicate_request_gets_the_same_answer_and_stores_nothing_twice(rabbit_url, price_app) -> None:
    request = request_at(FIRST_2024_HOUR + 7200, "tx-dup")
    async with listening(rabbit_url, names.PRICE_RESOLVED) as answers:
        await ask(rabbit_url, request)
        await ask(rabbit_url, request)
        first, second = await answers.collect(2)
    assert json.loads(first.body) == json.loads(second.body)
    stored = await price_app.service.store.pool.fetchval(
        "SELECT count(*) FROM answered_requests WHERE message_id = $1", request.message_id)
    assert stored == 1


async def test_poison_message_goes_to_the_dlq_with_a_reason_and_the_consumer_keeps_answering(
    rabbit_url, price_app
) -> None:
    await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED, b'{"transaction_id": 5}')
    parked = await dead_letters(rabbit_url, names.PRICE_REQUESTS_QUEUE, 1)
    assert len(parked) == 1
    reason = parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
    assert "PriceRequested refused" in reason and "transaction_id" in reason
    async with listening(rabbit_url, names.PRICE_RESOLVED) as answers:
        await ask(rabbit_url, request_at(FIRST_2024_HOUR))
        assert decode(PriceResolved, (await answers.next()).body).price_usd == Decimal("42288.58")


async def test_requests_sent_while_the_service_is_down_are_answered_after_restart(rabbit_url, price_settings) -> None:
    async with running(price_settings):
        pass  # declares the topology, then stops
    requests = [request_at(FIRST_2024_HOUR + i * 3600, f"tx-{i}") for i in range(20)]
    async with listening(rabbit_url, names.PRICE_RESOLVED) as answers:
        for request in requests:
            await ask(rabbit_url, request)
        await asyncio.sleep(0.2)
        async with running(price_settings):
            got = [decode(PriceResolved, m.body) for m in await answers.collect(20)]
    assert sorted(a.transaction_id for a in got) == sorted(r.transaction_id for r in requests)


async def test_newest_candle_change_publishes_price_ticked(rabbit_url, price_app, fake_provider) -> None:
    from price.domain import CandleRow
    from price.handlers import tick_for

    newest = 1726074000 + 3600
    row = CandleRow(newest, Decimal("57000.5"), Decimal("57100"), Decimal("56900"), Decimal("57050.25"), Decimal(1))
    async with listening(rabbit_url, names.PRICE_TICKED) as ticks:
        await price_app.service.store.store([row], "test", tick=tick_for)
        body = json.loads((await ticks.next()).body)
    assert body["price_usd"] == "57050.25"
    assert body["hour"] == newest


async def test_queries_answer_over_request_reply(rabbit_url, price_app) -> None:
    from contracts.prices import LatestPriceRequested, PriceAtRequested, PriceRangeRequested
    from contracts.rpc import RpcClient

    client = RpcClient(rabbit_url, timeout=5)
    await client.connect()
    try:
        at, later, latest = await asyncio.gather(
            client.call(PriceAtRequested(at=FIRST_2024_HOUR + 10)),
            client.call(PriceAtRequested(at=100)),
            client.call(LatestPriceRequested()),
        )
        day = await client.call(PriceRangeRequested(start=FIRST_2024_HOUR, end=FIRST_2024_HOUR + 3 * 86400,
                                                    step="day"))
    finally:
        await client.close()
    assert at.ok and at.result["price_usd"] == "42288.58"
    assert not later.ok and later.error.code == "not_found" and later.error.details == {"reason": "before_data"}
    assert latest.ok and latest.result["hour"] >= 1726074000
    assert [c["hour"] for c in day.result["candles"]] == [FIRST_2024_HOUR + d * 86400 for d in range(4)]


async def test_malformed_query_is_dead_lettered(rabbit_url, price_app) -> None:
    await publish_raw(rabbit_url, names.COMMANDS_EXCHANGE, names.PRICE_AT, b"{}", reply_to="nowhere")
    parked = await dead_letters(rabbit_url, names.PRICE_QUERIES_QUEUE, 1)
    assert "PriceAtRequested refused" in parked[0].headers[names.DEAD_LETTER_REASON_HEADER]


async def test_a_batch_request_is_answered_in_one_message_with_every_trades_price_or_reason(
    remove_candles, rabbit_url, price_app, fake_provider
) -> None:
    gap = FIRST_2024_HOUR + 300 * 3600
    await remove_candles(gap, gap + 3600)
    times = [FIRST_2024_HOUR + 1800, FIRST_2024_HOUR + 2000, gap + 60, 1500000000,
             int(datetime.now(UTC).timestamp()) + 86400]
    items = [WantedPrice(request_id=f"r{n}", transaction_id=f"t{n}", at=datetime.fromtimestamp(t, UTC))
             for n, t in enumerate(times)]
    request = PriceRequested.batch("p-1", items)
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await ask(rabbit_url, request)
        answer = decode(PriceResolved, (await answers.next()).body)
        assert await answers.quiet_for(0.5)  # one message answers the whole batch
    assert answer.schema_version == 2 and answer.causation_id == request.message_id
    resolved = {item.request_id: item for item in answer.resolved}
    assert resolved["r0"].price_usd == resolved["r1"].price_usd == Decimal("42288.58")
    assert resolved["r2"].hour == gap and resolved["r2"].price_usd == synthetic_open(gap)  # fetched for the gap
    reasons = {item.request_id: item.reason for item in answer.unavailable}
    assert reasons == {"r3": "before_data", "r4": "in_future"}
