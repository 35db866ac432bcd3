"""The trades of one write batch ask for their prices in one message and are priced from one answer."""

from decimal import Decimal

from contracts.portfolios import GetPortfolio, RecordTransaction
from contracts.prices import PriceRequested, PriceResolved
from portfolio import handlers

from contracts import decode, names
from tests.integration.portfolio.test_portfolio_flow import OWNER, create, opens, priced, unix
from tests.support.bus import dead_letters, listening, publish_raw

TIMES = ["2024-01-01T00:30:00+00:00", "2024-02-10T13:05:00+00:00", "2024-04-20T07:59:59+00:00"]


async def test_a_write_batch_of_many_portfolios_sends_one_request_and_is_priced_from_one_answer(
    commands, portfolio_app, rabbit_url
) -> None:
    portfolios = [await create(commands, name=f"Batch {n}") for n in range(2)]
    trades = [RecordTransaction(owner_id=OWNER, portfolio_id=portfolios[n % 2], side="buy",
                                amount_btc=Decimal("0.1"), at=at) for n, at in enumerate(TIMES)]
    async with listening(rabbit_url, names.PRICE_REQUESTED, names.PRICE_RESOLVED, names.PRICE_UNAVAILABLE) as bus:
        results = await handlers.run_batch(portfolio_app.service, trades)  # one transaction, as the writer runs it
        request = decode(PriceRequested, (await bus.next()).body)
        answer = decode(PriceResolved, (await bus.next()).body)
        for portfolio_id in portfolios:
            await priced(commands, portfolio_id)
        assert await bus.quiet_for(0.5), "one request and one answer for the batch"

    recorded = {result.reply.result["transaction_id"]: trade for result, trade in zip(results, trades, strict=True)}
    assert request.schema_version == 2 and request.portfolio_id is None
    assert {(item.transaction_id, item.portfolio_id) for item in request.items} == \
        {(tx, trade.portfolio_id) for tx, trade in recorded.items()}
    assert answer.many_portfolios and not answer.unavailable
    prices = opens()
    assert {(a.transaction_id, a.portfolio_id, a.price_usd) for a in answer.resolved} == \
        {(tx, trade.portfolio_id, prices[unix(trade.at.isoformat()) // 3600 * 3600]) for tx, trade in recorded.items()}

    async def invested() -> list[str]:
        return [(await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=p)))["metrics"]["invested_usd"]
                for p in portfolios]
    before = await invested()
    assert Decimal(before[0]) == Decimal("0.1") * (prices[unix(TIMES[0]) // 3600 * 3600]
                                                    + prices[unix(TIMES[2]) // 3600 * 3600])

    # the answer redelivered: its single answers carry the same ids, so the inbox applies none of them again
    async with listening(rabbit_url, names.PORTFOLIO_UPDATED_ANY_OWNER) as updates:
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_RESOLVED, answer.to_json(),
                          message_id=answer.message_id)
        assert await updates.quiet_for(1.0), "a redelivered batch answer changes nothing"
    assert await invested() == before
    assert await dead_letters(rabbit_url, names.PORTFOLIO_PRICE_EVENTS_QUEUE, 1, timeout=0.5) == []
    singles = answer.singles()
    assert [s.message_id for s in singles] == [s.message_id for s in decode(PriceResolved, answer.to_json()).singles()]
    assert {s.causation_id for s in singles} == {item.request_id for item in request.items}
