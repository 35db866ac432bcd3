"""Ledgers and checkpoints stored before lots carried their buy times are refolded at the next write."""

import json
from decimal import Decimal

from contracts.portfolios import CreatePortfolio, EditTransaction, GetPortfolio, ListTransactions, RecordTransaction
from portfolio.domain import Ledger

OWNER = "owner-lots"


def without_buy_times(ledger: dict) -> dict:
    """The ledger as it was stored before lots had buy times: [sequence, amount, cost]."""
    book = ledger["book"]
    return {**ledger, "book": {**book, "lots": [lot[:3] for lot in book["lots"]]}}


async def test_old_ledger_and_checkpoints_are_refolded_with_buy_times_and_the_same_figures(commands,
                                                                                         portfolio_app) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="Old lots", cost_basis_method="fifo")))[
        "portfolio_id"]
    times = ["2024-01-05T10:00:00Z", "2024-02-05T10:00:00Z", "2024-03-05T10:00:00Z"]
    for at, amount, price in zip(times, ("1", "0.5", "0.25"), ("40000", "50000", "60000"), strict=True):
        await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                            amount_btc=Decimal(amount), at=at, price_usd=Decimal(price)))
    before = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    pool = portfolio_app.service.pool
    stored = json.loads(await pool.fetchval("SELECT ledger::text FROM portfolios WHERE portfolio_id = $1",
                                            portfolio_id))
    assert [lot[3] for lot in stored["book"]["lots"]] == ["2024-01-05T10:00:00+00:00", "2024-02-05T10:00:00+00:00",
                                                          "2024-03-05T10:00:00+00:00"]
    old = without_buy_times(stored)
    assert Ledger.from_json(old).needs_refold
    await pool.execute("UPDATE portfolios SET ledger = $2::jsonb WHERE portfolio_id = $1", portfolio_id,
                       json.dumps(old))
    await pool.execute("INSERT INTO ledger_checkpoints (portfolio_id, trade_count, last_at, last_sequence, ledger) "
                       "VALUES ($1, 1, '2024-01-05T10:00:00Z', 0, $2::jsonb)", portfolio_id,
                       json.dumps(without_buy_times({**stored, "trade_count": 1})))

    # a sell at the end would extend the stored ledger; it refolds instead, and an edit before the old checkpoint
    # would resume from it; it starts from the first trade instead
    await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="sell",
                                        amount_btc=Decimal("1.2"), at="2024-04-05T10:00:00Z",
                                        price_usd=Decimal("70000")))
    refolded = Ledger.from_json(json.loads(await pool.fetchval(
        "SELECT ledger::text FROM portfolios WHERE portfolio_id = $1", portfolio_id)))
    assert not refolded.needs_refold
    assert [(lot.amount_btc, lot.acquired_at.isoformat()) for lot in refolded.book.open_lots()] == [
        (Decimal("0.3"), "2024-02-05T10:00:00+00:00"), (Decimal("0.25"), "2024-03-05T10:00:00+00:00")]
    after = await commands.ok(GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id))
    # fifo: the whole first lot (40,000) and 0.2 of the second (10,000) against 84,000 of proceeds
    assert Decimal(after["metrics"]["realized_pnl_usd"]) == Decimal("34000")
    assert Decimal(after["metrics"]["invested_usd"]) == Decimal(before["metrics"]["invested_usd"])
    leftover = await pool.fetch("SELECT ledger::text FROM ledger_checkpoints WHERE portfolio_id = $1", portfolio_id)
    assert all(not Ledger.from_json(json.loads(row["ledger"])).needs_refold for row in leftover)

    await pool.execute("INSERT INTO ledger_checkpoints (portfolio_id, trade_count, last_at, last_sequence, ledger) "
                       "VALUES ($1, 1, '2024-01-05T10:00:00Z', 0, $2::jsonb)", portfolio_id,
                       json.dumps(without_buy_times({**stored, "trade_count": 1})))
    page = await commands.ok(ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id))
    third_buy = next(item for item in page["items"] if item["at"].startswith("2024-03-05"))
    await commands.ok(EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                      transaction_id=third_buy["transaction_id"], fee_usd=Decimal("2")))
    edited = Ledger.from_json(json.loads(await pool.fetchval(
        "SELECT ledger::text FROM portfolios WHERE portfolio_id = $1", portfolio_id)))
    assert [lot.acquired_at.isoformat() for lot in edited.book.open_lots()] == [
        "2024-02-05T10:00:00+00:00", "2024-03-05T10:00:00+00:00"]
    assert await pool.fetchval("SELECT count(*) FROM ledger_checkpoints WHERE portfolio_id = $1", portfolio_id) == 0
