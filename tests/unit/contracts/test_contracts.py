"""Contract tests: every model round-trips through JSON, money is a string, bad input is refused clearly."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from contracts.envelope import Message

from contracts import ContractError, ErrorCode, Reply, decode, names, portfolios, prices, topology

AT = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
METRICS = portfolios.PortfolioMetrics(
    holdings_btc=Decimal("1.5"),
    invested_usd=Decimal("100020"),
    cost_basis_usd=Decimal("75015"),
    current_value_usd=Decimal("75000"),
    realized_pnl_usd=Decimal("9990"),
    unrealized_pnl_usd=Decimal("-15"),
    net_result_usd=Decimal("9975"),
)

EXAMPLES: list[Message] = [
    prices.PriceRequested(transaction_id="t1", portfolio_id="p1", at=AT),
    prices.PriceResolved(transaction_id="t1", at=AT, hour=1704067200, price_usd=Decimal("42288.58"), source="csv"),
    prices.PriceUnavailable(transaction_id="t1", at=AT, reason=prices.UnavailableReason.BEFORE_DATA, detail="x"),
    prices.PriceTicked(hour=1704067200, price_usd=Decimal("42452.66"), as_of=AT),
    prices.PriceRangeRequested(start=1704067200, end=1704153600, step="day"),
    prices.PriceAtRequested(at=1704069000),
    prices.LatestPriceRequested(),
    portfolios.CreatePortfolio(owner_id="u", name="Savings", goal_usd=Decimal("100000")),
    portfolios.RecordTransaction(owner_id="u", portfolio_id="p", side="buy", amount_btc=Decimal("0.00000001"), at=AT),
    portfolios.EditTransaction(owner_id="u", portfolio_id="p", transaction_id="t", fee_usd=Decimal("1.5")),
    portfolios.ImportTransactions(owner_id="u", portfolio_id="p", csv_text="side,amount_btc,at\n", dry_run=True),
    portfolios.GetTaxReport(owner_id="u", portfolio_id="p", year=2024, method="hifo", format="csv"),
    portfolios.PortfolioUpdated(owner_id="u", portfolio_id="p", version=3, reason="transaction_priced", metrics=METRICS),
    Reply(ok=True, result={"x": "1"}),
    Reply.failure(None, ErrorCode.NOT_FOUND, "No portfolio p."),
    *[command(owner_id="u", portfolio_id="p") for command in (portfolios.GetPortfolio, portfolios.DeletePortfolio)],
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_json(message: Message) -> None:
    assert type(message).from_json(message.to_json()) == message


def test_every_command_has_a_routing_key_and_round_trips() -> None:
    assert len(portfolios.COMMANDS) == 19
    for key, model in portfolios.COMMANDS.items():
        assert model.routing_key == key
        assert key.split(".")[0] in {"portfolio", "transaction"}


def test_decimal_travels_as_an_exact_string() -> None:
    message = prices.PriceResolved(
        transaction_id="t", at=AT, hour=1704067200, price_usd=Decimal("42288.580000000000001"), source="csv"
    )
    body = json.loads(message.to_json())
    assert body["price_usd"] == "42288.580000000000001"
    assert prices.PriceResolved.from_json(message.to_json()).price_usd == Decimal("42288.580000000000001")


def test_large_and_tiny_decimals_never_use_exponent_notation() -> None:
    body = json.loads(METRICS.model_copy(update={"holdings_btc": Decimal("1E-8"), "invested_usd": Decimal("1E+6")})
                      .model_dump_json())
    assert body["holdings_btc"] == "0.00000001"
    assert body["invested_usd"] == "1000000"


def test_float_money_is_refused_with_a_reason() -> None:
    raw = portfolios.RecordTransaction(owner_id="u", portfolio_id="p", side="buy", amount_btc=Decimal("1"), at=AT)
    body = json.loads(raw.to_json())
    body["amount_btc"] = 0.1
    with pytest.raises(ContractError, match="never as a float"):
        decode(portfolios.RecordTransaction, body)


def test_unknown_schema_version_is_refused_clearly() -> None:
    body = json.loads(EXAMPLES[0].to_json())
    body["schema_version"] = 3
    with pytest.raises(ContractError, match="schema_version 3 of PriceRequested is not supported"):
        decode(prices.PriceRequested, body)


def test_a_batch_price_request_and_its_answers_round_trip_and_single_requests_are_still_read() -> None:
    items = [prices.WantedPrice(request_id=f"r{n}", transaction_id=f"t{n}", at=AT) for n in range(3)]
    batch = prices.PriceRequested.batch("p1", items, correlation_id="c1")
    assert decode(prices.PriceRequested, batch.to_json()).wanted() == items
    single = decode(prices.PriceRequested, EXAMPLES[0].to_json())
    assert single.schema_version == 1 and single.wanted()[0].request_id == single.message_id
    answers = prices.PriceResolved(schema_version=2, portfolio_id="p1", resolved=[prices.ResolvedPrice(
        request_id="r0", transaction_id="t0", at=AT, hour=1704067200, price_usd=Decimal("42000"), source="s")],
        unavailable=[prices.UnavailablePrice(request_id="r1", transaction_id="t1", at=AT,
                                             reason=prices.UnavailableReason.IN_FUTURE, detail="Not yet.")])
    assert decode(prices.PriceResolved, answers.to_json()) == answers
    for mixed in ({"schema_version": 2, "transaction_id": "t", "at": "2024-01-01T00:00:00Z", "items": []},
                  {"schema_version": 1, "items": [item.model_dump(mode="json") for item in items]},
                  {"schema_version": 2, "items": []}):
        with pytest.raises(ContractError):
            decode(prices.PriceRequested, mixed)


def test_single_price_requests_of_many_portfolios_are_combined_into_one_batch_and_the_rest_left_as_is() -> None:
    singles = [prices.PriceRequested(transaction_id=f"t{n}", portfolio_id=f"p{n % 2}", at=AT) for n in range(3)]
    import_batch = prices.PriceRequested.batch("p9", [prices.WantedPrice(request_id="r", transaction_id="t", at=AT)])
    tick = prices.PriceTicked(hour=1704067200, price_usd=Decimal("1"), as_of=AT)
    combined = prices.combine_price_requests([singles[0], tick, singles[1], import_batch, singles[2]])
    assert combined[:2] == [tick, import_batch]
    [batch] = combined[2:]
    assert batch.schema_version == 2 and batch.portfolio_id is None
    assert [(i.request_id, i.transaction_id, i.portfolio_id) for i in batch.items] == \
        [(s.message_id, s.transaction_id, s.portfolio_id) for s in singles]
    assert prices.combine_price_requests([singles[0], tick]) == [singles[0], tick]  # a lone request stays as it is
    many = [prices.PriceRequested(transaction_id=f"t{n}", portfolio_id="p", at=AT)
            for n in range(prices.MAX_PRICES_PER_REQUEST + 1)]
    assert [len(b.items) for b in prices.combine_price_requests(many)] == [prices.MAX_PRICES_PER_REQUEST, 1]
    [merged] = prices.combine_price_requests([batch, *prices.combine_price_requests(many[:2])])  # batches of batches
    assert [i.request_id for i in merged.items] == [*(s.message_id for s in singles), many[0].message_id,
                                                    many[1].message_id]


def test_an_answer_of_many_portfolios_stands_for_single_answers_with_ids_that_a_redelivery_repeats() -> None:
    answer = prices.PriceResolved(schema_version=2, correlation_id="c", resolved=[prices.ResolvedPrice(
        request_id="r0", transaction_id="t0", at=AT, hour=1704067200, price_usd=Decimal("42000"), source="s",
        portfolio_id="p0")], unavailable=[prices.UnavailablePrice(
            request_id="r1", transaction_id="t1", at=AT, reason=prices.UnavailableReason.IN_FUTURE, detail="Not yet.",
            portfolio_id="p1")])
    assert answer.many_portfolios
    resolved, unavailable = answer.singles()
    assert isinstance(resolved, prices.PriceResolved) and isinstance(unavailable, prices.PriceUnavailable)
    assert (resolved.schema_version, resolved.transaction_id, resolved.portfolio_id, resolved.price_usd,
            resolved.hour, resolved.causation_id, resolved.correlation_id) == \
        (1, "t0", "p0", Decimal("42000"), 1704067200, "r0", "c")
    assert (unavailable.transaction_id, unavailable.portfolio_id, unavailable.reason, unavailable.causation_id) == \
        ("t1", "p1", prices.UnavailableReason.IN_FUTURE, "r1")
    again = decode(prices.PriceResolved, answer.to_json()).singles()
    assert [s.message_id for s in again] == [resolved.message_id, unavailable.message_id]
    assert resolved.message_id != unavailable.message_id
    one_portfolio = answer.model_copy(update={"portfolio_id": "p0"})
    assert not one_portfolio.many_portfolios


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"transaction_id": "t"}', "schema 1 names one transaction_id and its at"),
        (b'{"transaction_id": "t", "at": "2024-01-01T00:00:00"}', "timezone"),
        (b'{"transaction_id": "t", "at": "2024-01-01T00:00:00Z", "surprise": 1}', "surprise: Extra inputs"),
    ],
)
def test_malformed_payload_is_refused_with_a_clear_error(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode(prices.PriceRequested, raw)


def test_times_are_normalised_to_utc() -> None:
    message = decode(prices.PriceRequested, b'{"transaction_id": "t", "at": "2024-01-01T02:30:00+02:00"}')
    assert message.at == AT
    assert message.at.tzinfo == UTC


def test_candle_hours_must_be_whole_hours() -> None:
    with pytest.raises(ContractError, match="multiple of 3600"):
        decode(prices.Candle, {"hour": 1704067201, "open": "1", "high": "1", "low": "1", "close": "1", "volume": "1"})


def test_reply_links_to_its_request() -> None:
    request = portfolios.GetPortfolio(owner_id="u", portfolio_id="p")
    reply = Reply.failure(request, ErrorCode.NOT_FOUND, "No portfolio p.")
    assert reply.correlation_id == request.correlation_id
    assert reply.causation_id == request.message_id
    assert Reply.from_json(reply.to_json()).error.code is ErrorCode.NOT_FOUND


def test_topology_declares_durable_queues_with_a_dead_letter_exchange() -> None:
    assert {spec.name for spec in topology.QUEUES} == {
        names.PRICE_REQUESTS_QUEUE, names.PRICE_QUERIES_QUEUE,
        names.PORTFOLIO_COMMANDS_QUEUE, names.PORTFOLIO_PRICE_EVENTS_QUEUE,
    }
    for spec in topology.QUEUES:
        assert spec.arguments["x-dead-letter-exchange"] == names.DEAD_LETTER_EXCHANGE
        assert spec.arguments["x-dead-letter-routing-key"] == spec.name
        assert spec.dead_letter_queue == spec.name + ".dlq"
        assert spec.exchange in topology.EXCHANGES


def test_asyncapi_document_lists_every_event_and_command_with_its_schema() -> None:
    from contracts.asyncapi import asyncapi_document

    document = asyncapi_document()
    for key in (names.PRICE_REQUESTED, names.PRICE_TICKED, names.PORTFOLIO_UPDATED, *portfolios.COMMANDS):
        assert key in document["channels"], key
    assert document["channels"][names.PRICE_REQUESTED]["x-consumer-queues"] == [names.PRICE_REQUESTS_QUEUE]
    assert document["channels"][names.TRANSACTION_RECORD]["x-consumer-queues"] == [names.PORTFOLIO_COMMANDS_QUEUE]
    schemas = document["components"]["schemas"]
    assert schemas["RecordTransaction"]["properties"]["amount_btc"]["type"] == "string"
    for message in document["components"]["messages"].values():
        assert message["payload"]["$ref"].removeprefix("#/components/schemas/") in schemas


def test_the_published_asyncapi_document_is_the_one_the_contracts_generate() -> None:
    """docs/asyncapi.json is what `make asyncapi` writes from contracts; a changed message must regenerate it."""
    import json
    from pathlib import Path

    from contracts.asyncapi import asyncapi_document

    published = json.loads((Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json").read_text())
    assert published == json.loads(json.dumps(asyncapi_document())), "run `make asyncapi` and commit docs/asyncapi.json"
