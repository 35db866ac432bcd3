"""Portfolios and transactions over the real broker, priced by the real price service from the 2024 candles."""

import asyncio
import csv
import json
from datetime import UTC, datetime
from decimal import Decimal

from contracts.portfolios import (
    CreatePortfolio,
    DeletePortfolio,
    DeleteTransaction,
    EditTransaction,
    ExportTransactions,
    GetHistory,
    GetPortfolio,
    GetTransaction,
    ImportTransactions,
    ListPortfolios,
    ListTransactions,
    PortfolioUpdated,
    RecordTransaction,
    RenamePortfolio,
    SetCostBasisMethod,
    SetPortfolioGoal,
)
from contracts.prices import PriceTicked
from portfolio.domain import irr_at

from contracts import names
from tests.support.bus import dead_letters, listening, publish_raw
from tests.support.infrastructure import open_candles

OWNER = "owner-a"


def opens() -> dict[int, Decimal]:
    with open_candles() as handle:
        return {int(r["unix"]): Decimal(r["open"]) for r in csv.DictReader(handle)}


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


async def wait_until(predicate, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def create(commands, name="Savings", **extra) -> str:
    return (await commands.ok(CreatePortfolio(owner_id=OWNER, name=name, **extra)))["portfolio_id"]


async def priced(commands, portfolio_id: str) -> dict:
    async def all_priced():
        view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
        return view if view["metrics"]["pending_count"] == 0 else None
    return await wait_until(all_priced)


async def test_trades_at_real_2024_times_are_priced_at_the_candle_opens(commands, rabbit_url) -> None:
    prices = opens()
    portfolio_id = await create(commands)
    buy_at, buy2_at, sell_at = "2024-01-01T00:30:00+00:00", "2024-03-01T10:15:00+00:00", "2024-06-03T17:59:59+00:00"
    async with listening(rabbit_url, names.PORTFOLIO_UPDATED_ANY_OWNER) as updates:
        first = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                                    amount_btc=Decimal("0.5"), at=buy_at, fee_usd=Decimal("10")))
        assert first["status"] == "pending" and first["price_usd"] is None
        await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                            amount_btc=Decimal("0.25"), at=buy2_at, fee_usd=Decimal("5")))
        view = await priced(commands, portfolio_id)
        sell = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                                   amount_btc=Decimal("0.3"), at=sell_at, fee_usd=Decimal("2")))
        view = await priced(commands, portfolio_id)
        received = []  # a create, three records, three pricings, and the IRR passes between them
        while sum(1 for u in received if u.reason == "transaction_priced") < 3:
            received.append(PortfolioUpdated.from_json((await updates.next(20)).body))
    p1, p2, p3 = prices[unix(buy_at) // 3600 * 3600], prices[unix(buy2_at) // 3600 * 3600], \
        prices[unix(sell_at) // 3600 * 3600]
    assert p1 == Decimal("42288.58")
    tx = await commands.ok(GetTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                          transaction_id=sell["transaction_id"]))
    assert Decimal(tx["price_usd"]) == p3 and tx["status"] == "priced" and tx["price_hour"] == unix(sell_at) // 3600 * 3600
    invested = Decimal("0.5") * p1 + 10 + Decimal("0.25") * p2 + 5
    average = invested / Decimal("0.75")
    realized = Decimal("0.3") * p3 - 2 - average * Decimal("0.3")
    latest = Decimal(view["metrics"]["latest_price_usd"])
    assert latest == Decimal("57632.01") or latest > 0  # close of the newest shared candle
    m = view["metrics"]
    assert Decimal(m["invested_usd"]) == invested
    assert Decimal(m["holdings_btc"]) == Decimal("0.45")
    assert abs(Decimal(m["realized_pnl_usd"]) - realized) < Decimal("1E-18")
    assert abs(Decimal(m["cost_basis_usd"]) - average * Decimal("0.45")) < Decimal("1E-18")
    assert Decimal(m["current_value_usd"]) == Decimal("0.45") * latest
    assert abs(Decimal(m["net_result_usd"]) - (Decimal("0.3") * p3 - 2 + Decimal("0.45") * latest - invested)) \
        < Decimal("1E-18")
    assert m["twr_pct"] is not None and m["max_drawdown_pct"] is not None
    irr = m["irr_pct"]  # a small portfolio's IRR is stored with its other figures, by the domain function
    flows = [(datetime.fromisoformat(buy_at), -(Decimal("0.5") * p1 + 10)),
             (datetime.fromisoformat(buy2_at), -(Decimal("0.25") * p2 + 5)),
             (datetime.fromisoformat(sell_at), Decimal("0.3") * p3 - 2)]
    assert Decimal(irr) == irr_at(flows, Decimal(m["current_value_usd"]), datetime.fromisoformat(m["priced_until"]))
    priced_updates = [u for u in received if u.reason == "transaction_priced"]
    assert len(priced_updates) == 3 and all(u.owner_id == OWNER for u in received)
    assert priced_updates[-1].metrics.holdings_btc == Decimal("0.45")


async def test_time_before_the_data_fails_cleanly_with_its_reason(commands) -> None:
    portfolio_id = await create(commands)
    tx = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                             amount_btc=Decimal("1"), at="2015-05-05T12:00:00Z"))

    async def failed():
        got = await commands.ok(GetTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                               transaction_id=tx["transaction_id"]))
        return got if got["status"] == "failed" else None
    got = await wait_until(failed)
    assert got["failure_reason"] == "before_data" and "before the first stored" in got["failure_detail"]
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert view["metrics"]["failed_count"] == 1 and Decimal(view["metrics"]["invested_usd"]) == 0


async def test_typed_price_prices_at_once_and_worked_example_holds(commands) -> None:
    portfolio_id = await create(commands, cost_basis_method="fifo")
    for side, amount, at, price, fee in [("buy", "1", "2024-01-02T00:00:00Z", "40000", "10"),
                                         ("buy", "1", "2024-01-03T00:00:00Z", "60000", "10"),
                                         ("sell", "0.5", "2024-01-04T00:00:00Z", "70000", "5")]:
        tx = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side,
                                                 amount_btc=Decimal(amount), at=at, price_usd=Decimal(price),
                                                 fee_usd=Decimal(fee)))
        assert tx["status"] == "priced" and tx["price_source"] == "user"
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert Decimal(view["metrics"]["realized_pnl_usd"]) == 14990 and Decimal(view["metrics"]["cost_basis_usd"]) == 80015
    view = await commands.ok(SetCostBasisMethod(owner_id=OWNER, portfolio_id=portfolio_id, cost_basis_method="lifo"))
    assert Decimal(view["metrics"]["realized_pnl_usd"]) == 4990 and Decimal(view["metrics"]["cost_basis_usd"]) == 70015
    view = await commands.ok(SetPortfolioGoal(owner_id=OWNER, portfolio_id=portfolio_id, goal_usd=Decimal("100000")))
    assert view["goal_usd"] == "100000" and view["metrics"]["goal_progress_pct"] is not None
    view = await commands.ok(RenamePortfolio(owner_id=OWNER, portfolio_id=portfolio_id, name="Cold storage"))
    assert view["name"] == "Cold storage"


async def test_sell_over_holdings_edit_and_delete_that_break_a_later_sell_are_refused(commands) -> None:
    portfolio_id = await create(commands)
    buy = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                              amount_btc=Decimal("1"), at="2024-02-01T00:00:00Z",
                                              price_usd=Decimal("40000")))
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                        amount_btc=Decimal("0.8"), at="2024-03-01T00:00:00Z",
                                        price_usd=Decimal("50000")))
    too_much = await commands.send(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                                     amount_btc=Decimal("0.5"), at="2024-04-01T00:00:00Z"))
    assert too_much.error.code == "insufficient_holdings"
    assert "You hold 0.2 BTC on 2024-04-01 00:00 UTC; you can't sell 0.5 BTC." == too_much.error.message
    shrink = await commands.send(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                 transaction_id=buy["transaction_id"], amount_btc=Decimal("0.5")))
    assert shrink.error.code == "insufficient_holdings"
    delete = await commands.send(DeleteTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                   transaction_id=buy["transaction_id"]))
    assert delete.error.code == "insufficient_holdings"
    edited = await commands.ok(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                               transaction_id=buy["transaction_id"], fee_usd=Decimal("25"),
                                               note="from the ATM"))
    assert edited["fee_usd"] == "25" and edited["note"] == "from the ATM"
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert Decimal(view["metrics"]["invested_usd"]) == 40025


async def test_a_back_dated_sell_that_would_uncover_a_later_sell_is_refused_and_names_it(commands) -> None:
    """A new sell is checked against the holdings before it and every trade after it (pending buys count)."""
    portfolio_id = await create(commands)
    for side, amount, at in [("buy", "1", "2024-02-01T00:00:00Z"), ("sell", "0.7", "2024-04-01T00:00:00Z"),
                             ("buy", "0.5", "2024-05-01T00:00:00Z")]:
        await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side,
                                            amount_btc=Decimal(amount), at=at, price_usd=Decimal("40000")))
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                        amount_btc=Decimal("0.25"), at="2024-02-01T00:00:00Z"))  # pending, counted
    breaks_later = await commands.send(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                                         amount_btc=Decimal("0.6"), at="2024-03-01T00:00:00Z"))
    assert breaks_later.error.code == "insufficient_holdings"
    assert breaks_later.error.message == "You hold 0.65 BTC on 2024-04-01 00:00 UTC; you can't sell 0.7 BTC."
    same_instant = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                                       amount_btc=Decimal("0.55"), at="2024-02-01T00:00:00Z"))
    assert same_instant["side"] == "sell"
    at_the_end = await commands.send(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                                       amount_btc=Decimal("0.51"), at="2024-06-01T00:00:00Z"))
    assert at_the_end.error.message == "You hold 0.5 BTC on 2024-06-01 00:00 UTC; you can't sell 0.51 BTC."


async def test_validation_errors_are_typed_replies(commands) -> None:
    portfolio_id = await create(commands)
    for amount, at, field in [(Decimal("0.000000001"), "2024-01-01T00:00:00Z", "amount_btc"),
                              (Decimal("1"), "2031-01-01T00:00:00Z", "at"),
                              (Decimal("1"), "2009-01-01T00:00:00Z", "at")]:
        reply = await commands.send(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                                      amount_btc=amount, at=at))
        assert reply.error.code == "validation" and reply.error.details == {"field": field}


async def test_another_owners_portfolio_is_not_found_everywhere(commands) -> None:
    portfolio_id = await create(commands)
    tx = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                             amount_btc=Decimal("1"), at="2024-02-01T00:00:00Z",
                                             price_usd=Decimal("1")))
    intruder = "owner-b"
    for command in [GetPortfolio(owner_id=intruder, portfolio_id=portfolio_id),
                    RenamePortfolio(owner_id=intruder, portfolio_id=portfolio_id, name="mine"),
                    DeletePortfolio(owner_id=intruder, portfolio_id=portfolio_id),
                    ListTransactions(owner_id=intruder, portfolio_id=portfolio_id),
                    GetTransaction(owner_id=intruder, portfolio_id=portfolio_id, transaction_id=tx["transaction_id"]),
                    DeleteTransaction(owner_id=intruder, portfolio_id=portfolio_id,
                                      transaction_id=tx["transaction_id"]),
                    ExportTransactions(owner_id=intruder, portfolio_id=portfolio_id),
                    GetHistory(owner_id=intruder, portfolio_id=portfolio_id)]:
        reply = await commands.send(command)
        assert not reply.ok and reply.error.code == "not_found", command
    assert (await commands.ok(ListPortfolios(owner_id=intruder)))["items"] == []


async def test_duplicate_command_returns_the_same_reply_and_changes_nothing(commands) -> None:
    portfolio_id = await create(commands)
    record = RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal("1"),
                               at="2024-02-01T00:00:00Z", price_usd=Decimal("100"))
    first, second = await commands.send(record), await commands.send(record)
    assert first.result == second.result
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    assert page["total"] == 1


async def test_poison_command_goes_to_the_dlq_and_the_service_keeps_answering(commands, rabbit_url) -> None:
    await publish_raw(rabbit_url, names.COMMANDS_EXCHANGE, names.TRANSACTION_RECORD, b'{"owner_id": 1}')
    parked = await dead_letters(rabbit_url, names.PORTFOLIO_COMMANDS_QUEUE, 1)
    assert "RecordTransaction refused" in parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
    assert (await commands.ok(ListPortfolios(owner_id=OWNER)))["total"] >= 0


async def test_price_tick_moves_every_portfolio_with_one_update_each(commands, rabbit_url, portfolio_app) -> None:
    ids = [await create(commands, name=f"p{i}") for i in range(3)]
    for portfolio_id in ids:
        await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                            amount_btc=Decimal("2"), at="2024-02-01T00:00:00Z",
                                            price_usd=Decimal("40000")))
    tick = PriceTicked(hour=1900000800, price_usd=Decimal("80000"), open_usd=Decimal("79000"),
                       as_of=datetime.fromtimestamp(1900000800 + 3600, UTC))
    async with listening(rabbit_url, names.PORTFOLIO_UPDATED_ANY_OWNER) as updates:
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_TICKED, tick.to_json())
        await publish_raw(rabbit_url, names.EVENTS_EXCHANGE, names.PRICE_TICKED, tick.to_json())  # redelivered
        got = [PortfolioUpdated.from_json(m.body) for m in await updates.collect(3)]
        assert await updates.quiet_for(1.0)
    mine = [u for u in got if u.portfolio_id in ids]
    assert len(mine) == 3 and all(u.reason == "price_ticked" for u in mine)
    assert all(u.metrics.current_value_usd == Decimal("160000.0") for u in mine)
    # the tick's own events carry the IRR at the new price: −80,000 then +160,000 at T
    expected_irr = irr_at([(datetime(2024, 2, 1, tzinfo=UTC), Decimal(-80000))], Decimal(160000), tick.as_of)
    assert expected_irr is not None and all(u.metrics.irr_pct == expected_irr for u in mine)
    view = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=ids[0]))
    assert Decimal(view["metrics"]["net_result_usd"]) == Decimal("80000")
    assert Decimal(view["metrics"]["twr_pct"]) == Decimal("100")


async def test_import_dry_run_errors_then_import_and_export_round_trip(commands) -> None:
    portfolio_id = await create(commands)
    bad = "side,amount_btc,at,fee_usd,price_usd,note\nbuy,1,2024-01-05T00:00:00Z,1,42000,a\nsell,5,2024-01-06T00:00:00Z,,,\n"
    report = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=bad))
    assert report["imported"] == 0 and [r["ok"] for r in report["rows"]] == [True, False]
    assert "can't sell 5 BTC" in report["rows"][1]["error"]
    good = bad.replace("sell,5", "sell,0.5")
    dry = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=good,
                                               dry_run=True))
    assert dry["imported"] == 0 and dry["valid_rows"] == 2
    done = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, csv_text=good))
    assert done["imported"] == 2
    await priced(commands, portfolio_id)
    exported = await commands.ok(ExportTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    copy_id = await create(commands, name="copy")
    again = await commands.ok(ImportTransactions(owner_id=OWNER, portfolio_id=copy_id, csv_text=exported["content"]))
    assert again["imported"] == 2
    original = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    copy = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=copy_id))
    assert original["metrics"]["net_result_usd"] == copy["metrics"]["net_result_usd"]
    as_json = await commands.ok(ExportTransactions(owner_id=OWNER, portfolio_id=portfolio_id, format="json"))
    assert len(json.loads(as_json["content"])) == 2


async def test_history_follows_the_2024_prices(commands) -> None:
    portfolio_id = await create(commands)
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                        amount_btc=Decimal("1"), at="2024-01-01T00:00:00Z",
                                        price_usd=Decimal("42288.58")))
    history = await commands.ok(GetHistory(owner_id=OWNER, portfolio_id=portfolio_id, start="2024-01-01T00:00:00Z",
                                           end="2024-01-05T00:00:00Z", interval="day"))
    values = [(p["at"][:10], p["value_usd"]) for p in history["points"]]
    assert values[0][0] == "2024-01-01" and Decimal(values[0][1]) == Decimal("42288.58") and len(values) == 5


async def test_listing_paginates_newest_first_and_delete_portfolio_hides_it(commands) -> None:
    portfolio_id = await create(commands)
    for day in range(1, 6):
        await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                            amount_btc=Decimal("0.1"), at=f"2024-01-0{day}T00:00:00Z",
                                            price_usd=Decimal("1000")))
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id, offset=1, limit=2))
    assert page["total"] == 5 and [i["at"][:10] for i in page["items"]] == ["2024-01-04", "2024-01-03"]
    assert Decimal(page["items"][0]["metrics"]["cost_usd"]) == 100
    await commands.ok(DeletePortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    gone = await commands.send(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    assert gone.error.code == "not_found"
