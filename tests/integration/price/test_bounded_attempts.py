"""A message that fails unexpectedly is tried a bounded number of times, then dead-lettered with its reason;
an answer from the provider that cannot be read is retried, then `provider_unavailable`."""

import asyncio
from datetime import UTC, datetime

import pytest
from contracts.faststream_support import ATTEMPT_HEADER
from contracts.prices import PriceAtRequested, PriceRequested, PriceResolved, PriceUnavailable
from contracts.rpc import RpcClient
from price import handlers, messaging
from price.provider import CryptoCompareProvider, ProviderUnavailable

from contracts import decode, names
from tests.support.bus import dead_letters, listening, publish_raw
from tests.support.fake_cryptocompare import FakeCryptoCompare

FIRST_2024_HOUR = 1704067200
UNREADABLE_ANSWERS = {
    "not JSON": "<html><body>502 Bad Gateway</body></html>",
    "no Data": '{"Response": "Success", "Message": "", "HasWarning": false}',
    "a null price": ('{"Response": "Success", "Data": {"TimeFrom": 1704067200, "TimeTo": 1704067200, "Data": '
                     '[{"time": 1704067200, "open": null, "high": 1, "low": 1, "close": 1, "volumefrom": 1}]}}'),
}


def request_at(unix: int, transaction_id: str) -> PriceRequested:
    return PriceRequested(transaction_id=transaction_id, portfolio_id="p-1", at=datetime.fromtimestamp(unix, UTC))


@pytest.mark.parametrize("body", UNREADABLE_ANSWERS.values(), ids=UNREADABLE_ANSWERS.keys())
async def test_unreadable_provider_answer_is_retried_then_provider_unavailable(body: str) -> None:
    fake = FakeCryptoCompare(unreadable_answers=100, unreadable_body=body).start()
    provider = CryptoCompareProvider(fake.url, attempts=3, backoff_seconds=0.01)
    try:
        with pytest.raises(ProviderUnavailable, match="unreadable answer"):
            await provider.page(FIRST_2024_HOUR, limit=10)
    finally:
        await provider.close()
        fake.stop()
    assert len(fake.fake.requests) == 3


async def test_unreadable_answer_once_then_a_good_one_is_read() -> None:
    fake = FakeCryptoCompare(unreadable_answers=1).start()
    provider = CryptoCompareProvider(fake.url, attempts=3, backoff_seconds=0.01)
    try:
        _, rows, _ = await provider.page(FIRST_2024_HOUR, limit=10)
    finally:
        await provider.close()
        fake.stop()
    assert len(rows) == 11 and len(fake.fake.requests) == 2


@pytest.mark.parametrize("body", UNREADABLE_ANSWERS.values(), ids=UNREADABLE_ANSWERS.keys())
async def test_gap_with_an_unreadable_provider_is_answered_provider_unavailable_once(
    remove_candles, rabbit_url, price_app, fake_provider, body: str
) -> None:
    gap = FIRST_2024_HOUR + 300 * 3600
    await remove_candles(gap, gap + 3600)
    fake_provider.fake.unreadable_answers, fake_provider.fake.unreadable_body = 1000, body
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED,
                          request_at(gap, "tx-unreadable").to_json())
        answer = decode(PriceUnavailable, (await answers.next()).body)
        assert await answers.quiet_for(1.0), "one answer, not a loop"
    assert answer.reason == "provider_unavailable"
    assert "unreadable answer" in answer.detail
    assert len(fake_provider.fake.requests) == price_app.settings.provider_attempts


async def test_unexpected_error_is_dead_lettered_after_the_set_attempts_and_the_consumer_goes_on(
    rabbit_url, price_app, monkeypatch
) -> None:
    calls: list[str] = []
    real_answer = handlers.answer_price_request

    async def broken_for_one(service, request):  # type: ignore[no-untyped-def]
        if request.transaction_id == "tx-bug":
            calls.append(request.message_id)
            raise RuntimeError("a bug the service did not expect")
        return await real_answer(service, request)

    monkeypatch.setattr(handlers, "answer_price_request", broken_for_one)
    poison = request_at(FIRST_2024_HOUR, "tx-bug")
    async with listening(rabbit_url, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as answers:
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED, poison.to_json(),
                          message_id=poison.message_id)
        parked = await dead_letters(rabbit_url, names.PRICE_REQUESTS_QUEUE, 1)
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_REQUESTED,
                          request_at(FIRST_2024_HOUR, "tx-fine").to_json())
        answer = decode(PriceResolved, (await answers.next()).body)
    assert answer.transaction_id == "tx-fine"
    max_attempts = price_app.settings.consumer_max_attempts
    assert calls == [poison.message_id] * max_attempts
    assert len(parked) == 1 and parked[0].message_id == poison.message_id
    assert parked[0].headers[ATTEMPT_HEADER] == max_attempts
    reason = parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
    assert f"failed {max_attempts} time(s)" in reason and "a bug the service did not expect" in reason
    await asyncio.sleep(0.5)
    assert len(calls) == max_attempts, "not tried again after dead-lettering"


async def test_query_that_keeps_failing_gets_a_typed_error_reply_and_is_dead_lettered(
    rabbit_url, price_app, monkeypatch
) -> None:
    calls = 0

    async def broken(service, query):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        raise ZeroDivisionError("a bug in price.at")

    monkeypatch.setitem(messaging.QUERY_HANDLERS, names.PRICE_AT,
                        (PriceAtRequested, broken))
    client = RpcClient(rabbit_url, timeout=10)
    await client.connect()
    try:
        reply = await client.call(PriceAtRequested(at=FIRST_2024_HOUR))
    finally:
        await client.close()
    parked = await dead_letters(rabbit_url, names.PRICE_QUERIES_QUEUE, 1)
    assert not reply.ok and reply.error.code == "unavailable"
    assert calls == price_app.settings.consumer_max_attempts
    assert "a bug in price.at" in parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
