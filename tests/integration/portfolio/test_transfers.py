"""Transfers over the real broker: both projections, a back-dated buy, edit, delete, and replay = live."""

import asyncio
from decimal import Decimal

from contracts.portfolios import (
    CreatePortfolio,
    DeletePortfolio,
    DeleteTransaction,
    DeleteTransfer,
    EditTransaction,
    EditTransfer,
    GetHistory,
    GetPortfolio,
    GetTaxReport,
    ListTransactions,
    RecordTransaction,
    RecordTransfer,
)

from tests.integration.portfolio.test_replay import replay_cli

OWNER = "owner-transfers"
D = Decimal


async def create(commands, name: str, method: str, owner: str = OWNER) -> str:
    return (await commands.ok(CreatePortfolio(owner_id=owner, name=name, cost_basis_method=method)))["portfolio_id"]


async def buy(commands, portfolio_id: str, amount: str, at: str, price: str) -> str:
    tx = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                             amount_btc=D(amount), at=at, price_usd=D(price), fee_usd=D("10")))
    return tx["transaction_id"]


async def transactions(commands, portfolio_id: str) -> dict[str, dict]:
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    return {item["transaction_id"]: item for item in page["items"]}


async def settled(commands, portfolio_id: str, transaction_id: str, moved_cost: Decimal | None = None) -> dict:
    """The transaction once priced (and, if given, carrying that moved cost): the price comes over the bus."""
    for _ in range(100):
        item = (await transactions(commands, portfolio_id)).get(transaction_id)
        if item and item["status"] == "priced" and (
                moved_cost is None or D(item["metrics"]["moved_cost_usd"]) == moved_cost):
            return item
        await asyncio.sleep(0.1)
    raise AssertionError(f"{transaction_id} never settled: {item}")


async def metrics(commands, portfolio_id: str) -> dict:
    return (await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id)))["metrics"]


async def test_a_transfer_moves_lots_between_both_projections_and_replays(commands, portfolio_settings) -> None:
    source = await create(commands, "Exchange", "fifo")
    destination = await create(commands, "Cold storage", "hifo")
    await buy(commands, source, "1", "2024-02-01T12:00:00Z", "40000")
    await buy(commands, source, "1", "2024-02-10T12:00:00Z", "45000")
    invested = D("40010") + D("45010")

    out = await commands.ok(RecordTransfer(owner_id=OWNER, portfolio_id=source, to_portfolio_id=destination,
                                           amount_btc=D("1.5"), at="2024-03-01T12:00:00Z", fee_btc=D("0.1"),
                                           note="to the hardware wallet"))
    assert out["kind"] == "transfer_out" and out["status"] == "pending" and out["side"] == "sell"
    link = out["transfer"]
    assert link["counterpart_portfolio_id"] == destination
    sent = await settled(commands, source, out["transaction_id"])
    moved = D(sent["metrics"]["moved_cost_usd"])
    assert moved == D("40010") + D("45010") / 2  # fifo: the first lot, then half of the second
    arrived = await settled(commands, destination, link["counterpart_transaction_id"], moved)
    assert arrived["kind"] == "transfer_in" and D(arrived["amount_btc"]) == D("1.4")
    assert D(arrived["fee_btc"]) == D("0.1") and arrived["price_usd"] == sent["price_usd"]

    source_metrics, destination_metrics = await metrics(commands, source), await metrics(commands, destination)
    assert D(source_metrics["realized_pnl_usd"]) == 0 and D(destination_metrics["realized_pnl_usd"]) == 0
    assert D(source_metrics["cost_basis_usd"]) + D(destination_metrics["cost_basis_usd"]) == invested
    assert D(destination_metrics["holdings_btc"]) == D("1.4")
    assert D(destination_metrics["invested_usd"]) == moved
    for pid, figures in ((source, source_metrics), (destination, destination_metrics)):
        history = await commands.ok(GetHistory(owner_id=OWNER, portfolio_id=pid, start="2024-03-02T00:00:00Z",
                                               end="2024-03-03T00:00:00Z"))
        assert D(history["points"][-1]["invested_usd"]) == D(figures["invested_usd"])  # the chart moves cost too
        assert D(history["points"][-1]["holdings_btc"]) == D(figures["holdings_btc"])

    # a buy back-dated before the transfer changes the lots fifo sends: the destination follows
    earliest = await buy(commands, source, "2", "2024-01-15T12:00:00Z", "30000")
    await settled(commands, destination, link["counterpart_transaction_id"], D("60010") * D("1.5") / 2)
    source_metrics, destination_metrics = await metrics(commands, source), await metrics(commands, destination)
    assert D(source_metrics["cost_basis_usd"]) + D(destination_metrics["cost_basis_usd"]) == invested + D("60010")

    # an edit changes both sides; the destination's lots follow the source's ledger
    edited = await commands.ok(EditTransfer(owner_id=OWNER, portfolio_id=destination,
                                            transfer_id=link["transfer_id"], amount_btc=D("2.5")))
    assert edited["kind"] == "transfer_in"
    arrived = await settled(commands, destination, link["counterpart_transaction_id"], D("60010") + D("40010") / 2)
    assert D(arrived["amount_btc"]) == D("2.4")
    # editing a side as if it were a trade is refused with the way to do it
    refused = await commands.send(EditTransaction(owner_id=OWNER, portfolio_id=source,
                                                  transaction_id=out["transaction_id"], fee_usd=D("1")))
    assert refused.error.code == "validation" and "/transfers/" in refused.error.message
    # deleting the earliest buy would leave the transfer uncovered (2 BTC left before it): refused like a sell's
    refused = await commands.send(DeleteTransaction(owner_id=OWNER, portfolio_id=source, transaction_id=earliest))
    assert refused.error.code == "insufficient_holdings"

    check = await replay_cli(portfolio_settings, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    before = {pid: await metrics(commands, pid) for pid in (source, destination)}
    assert (await replay_cli(portfolio_settings, "replay")).returncode == 0
    for pid in (source, destination):
        assert {k: v for k, v in (await metrics(commands, pid)).items() if k != "irr_pct"} == \
            {k: v for k, v in before[pid].items() if k != "irr_pct"}

    await commands.ok(DeleteTransfer(owner_id=OWNER, portfolio_id=source, transfer_id=link["transfer_id"]))
    assert not [t for t in (await transactions(commands, source)).values() if t["kind"] != "trade"]
    assert await transactions(commands, destination) == {}
    assert D((await metrics(commands, destination))["holdings_btc"]) == 0
    assert D((await metrics(commands, source))["holdings_btc"]) == D("4")
    assert (await replay_cli(portfolio_settings, "replay", "--check")).returncode == 0


async def test_a_transfer_is_refused_for_another_owner_the_same_portfolio_or_more_than_held(commands) -> None:
    source = await create(commands, "Mine", "average")
    theirs = await create(commands, "Theirs", "average", owner="someone-else")
    mine = await create(commands, "Also mine", "lifo")
    await buy(commands, source, "1", "2024-02-01T12:00:00Z", "40000")

    def transfer(to: str, amount: str = "0.5", at: str = "2024-03-01T12:00:00Z") -> RecordTransfer:
        return RecordTransfer(owner_id=OWNER, portfolio_id=source, to_portfolio_id=to, amount_btc=D(amount), at=at)

    assert (await commands.send(transfer(theirs))).error.code == "not_found"
    assert (await commands.send(transfer(source))).error.code == "validation"
    over = (await commands.send(transfer(mine, "2"))).error
    assert over.code == "insufficient_holdings" and "can't move 2 BTC" in over.message
    early = (await commands.send(transfer(mine, at="2024-01-01T12:00:00Z"))).error
    assert early.code == "insufficient_holdings"
    fee = (await commands.send(RecordTransfer(owner_id=OWNER, portfolio_id=source, to_portfolio_id=mine,
                                              amount_btc=D("0.5"), fee_btc=D("0.5"),
                                              at="2024-03-01T12:00:00Z"))).error
    assert fee.code == "validation" and fee.details["field"] == "fee_btc"
    # deleting a transfer whose BTC the destination has sold since is refused (it would uncover that sell)
    out = await commands.ok(transfer(mine))
    arrived_id = out["transfer"]["counterpart_transaction_id"]
    await settled(commands, mine, arrived_id)
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=mine, side="sell", amount_btc=D("0.4"),
                                        at="2024-03-02T12:00:00Z", price_usd=D("60000")))
    refused = await commands.send(DeleteTransaction(owner_id=OWNER, portfolio_id=mine, transaction_id=arrived_id))
    assert refused.error.code == "insufficient_holdings"
    sold = await metrics(commands, mine)
    assert D(sold["realized_pnl_usd"]) == D("0.4") * D("60000") - D("40010") * D("0.4")


async def test_a_transfer_the_priced_buys_stop_covering_is_held_in_both_and_every_read_stays_ok(commands) -> None:
    source = await create(commands, "Held", "lifo")
    destination = await create(commands, "Waiting", "fifo")
    # a buy before the bundled 2024 candles: pending when the transfer is recorded, then failed (no price)
    early = await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=source, side="buy",
                                                amount_btc=D("1"), at="2023-06-01T12:00:00Z"))
    out = await commands.ok(RecordTransfer(owner_id=OWNER, portfolio_id=source, to_portfolio_id=destination,
                                           amount_btc=D("0.5"), at="2024-03-01T12:00:00Z"))
    arrived_id = out["transfer"]["counterpart_transaction_id"]

    async def shown(portfolio_id: str, transaction_id: str, status: str) -> dict:
        for _ in range(100):
            item = (await transactions(commands, portfolio_id))[transaction_id]
            if item["status"] == status:
                return item
            await asyncio.sleep(0.1)
        raise AssertionError(f"{transaction_id} is {item['status']}, not {status}: {item}")

    await shown(source, early["transaction_id"], "failed")
    sent = await shown(source, out["transaction_id"], "failed")
    assert sent["failure_reason"] == "insufficient_holdings" and sent["metrics"] is None
    received = await shown(destination, arrived_id, "failed")
    assert received["failure_detail"].startswith("In the source portfolio: You hold 0 BTC")
    figures = await metrics(commands, destination)
    assert D(figures["holdings_btc"]) == 0 and figures["failed_count"] == 1

    # a typed price on the buy counts it: the transfer is counted and its lots arrive
    await commands.ok(EditTransaction(owner_id=OWNER, portfolio_id=source, transaction_id=early["transaction_id"],
                                      price_usd=D("27000")))
    received = await settled(commands, destination, arrived_id, D("13500"))
    assert received["failure_detail"] is None
    assert D((await metrics(commands, destination))["cost_basis_usd"]) == D("13500")

    # the source portfolio deleted: the destination keeps what arrived and can still delete its side
    await commands.ok(DeletePortfolio(owner_id=OWNER, portfolio_id=source))
    refused = await commands.send(EditTransfer(owner_id=OWNER, portfolio_id=destination,
                                               transfer_id=out["transfer"]["transfer_id"], amount_btc=D("0.1")))
    assert refused.error.code == "not_found"
    await commands.ok(DeleteTransaction(owner_id=OWNER, portfolio_id=destination, transaction_id=arrived_id))
    assert await transactions(commands, destination) == {}


async def test_the_tax_reports_of_both_portfolios_follow_the_moved_lots(commands) -> None:
    source = await create(commands, "Bought early", "fifo")
    destination = await create(commands, "Sold later", "fifo")
    await buy(commands, source, "1", "2023-01-10T12:00:00Z", "20000")
    out = await commands.ok(RecordTransfer(owner_id=OWNER, portfolio_id=source, to_portfolio_id=destination,
                                           amount_btc=D("0.5"), at="2024-03-01T12:00:00Z"))
    await settled(commands, destination, out["transfer"]["counterpart_transaction_id"], D("10005"))
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=destination, side="sell", amount_btc=D("0.5"),
                                        at="2024-04-01T12:00:00Z", price_usd=D("70000")))
    moved_from = await commands.ok(GetTaxReport(owner_id=OWNER, portfolio_id=source, year=2024))
    assert moved_from["lines"] == []  # a transfer is not a sale
    report = await commands.ok(GetTaxReport(owner_id=OWNER, portfolio_id=destination, year=2024))
    [line] = report["lines"]
    assert line["acquired_at"] == "2023-01-10T12:00:00Z" and line["term"] == "long"
    assert D(line["cost_basis_usd"]) == D("10005") and D(line["gain_usd"]) == D("35000") - D("10005")
    assert D(report["totals"]["gain_usd"]) == D((await metrics(commands, destination))["realized_pnl_usd"])
