"""The tax report query on the bus: one read of the stored trades, pending sells counted, nothing written."""

from decimal import Decimal

from contracts.portfolios import CreatePortfolio, GetTaxReport, RecordTransaction

OWNER = "owner-tax"


async def test_the_report_counts_pending_sells_leaves_them_out_and_writes_nothing(commands, portfolio_app) -> None:
    portfolio_id = (await commands.ok(CreatePortfolio(owner_id=OWNER, name="Taxes", cost_basis_method="hifo")))[
        "portfolio_id"]
    ids = []
    for side, amount, at, price in [("buy", "1", "2023-05-01T00:00:00Z", "30000"),
                                    ("buy", "1", "2023-06-01T00:00:00Z", "25000"),
                                    ("sell", "0.5", "2024-05-01T00:00:00Z", "60000"),
                                    ("sell", "0.25", "2024-06-01T00:00:00Z", "60000"),
                                    ("sell", "1", "2024-07-01T00:00:00Z", "60000"),
                                    ("sell", "0.1", "2025-01-01T00:00:00Z", "90000")]:
        ids.append((await commands.ok(RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side=side,
                                                        amount_btc=Decimal(amount), at=at,
                                                        price_usd=Decimal(price))))["transaction_id"])
    pool = portfolio_app.service.pool
    # as if the second buy and a sell still waited for their prices: the 1 BTC sell after them is then more than
    # the priced buys hold, and is held until they are priced; neither sell is counted yet
    await pool.execute("UPDATE transactions SET status = 'pending', price_usd = NULL "
                       "WHERE transaction_id = ANY($1::text[])", [ids[1], ids[3]])
    await pool.execute("UPDATE transactions SET hold_reason = 'waiting_for_buys' WHERE transaction_id = $1", ids[4])
    stored = await pool.fetchrow("SELECT version, ledger::text, metrics::text FROM portfolios "
                                 "WHERE portfolio_id = $1", portfolio_id)
    events = await pool.fetchval("SELECT count(*) FROM events")

    report = await commands.ok(GetTaxReport(owner_id=OWNER, portfolio_id=portfolio_id, year=2024))
    assert (report["method"], report["pending_sells"]) == ("hifo", 2)
    # sold on the lot's first anniversary: still short term
    assert [(line["sell_transaction_id"], Decimal(line["amount_btc"]), Decimal(line["cost_basis_usd"]), line["term"])
            for line in report["lines"]] == [(ids[2], Decimal("0.5"), Decimal("15000"), "short")]
    assert Decimal(report["totals"]["gain_usd"]) == Decimal("15000")
    csv_file = await commands.ok(GetTaxReport(owner_id=OWNER, portfolio_id=portfolio_id, year=2025, format="csv"))
    assert csv_file["filename"].endswith("-tax-2025-hifo.csv") and csv_file["content_type"] == "text/csv"
    assert csv_file["content"].splitlines()[1] == "0.10000000 BTC,05/01/2023,01/01/2025,9000.00,3000.00,6000.00,Long-term"

    assert await pool.fetchrow("SELECT version, ledger::text, metrics::text FROM portfolios WHERE portfolio_id = $1",
                               portfolio_id) == stored
    assert await pool.fetchval("SELECT count(*) FROM events") == events

    refused = await commands.send(GetTaxReport(owner_id="someone-else", portfolio_id=portfolio_id, year=2024))
    assert not refused.ok and refused.error.code == "not_found"
    average = await commands.send(GetTaxReport(owner_id=OWNER, portfolio_id=portfolio_id, year=2024,
                                               method="average"))
    assert not average.ok and average.error.code == "validation" and average.error.details == {"field": "method"}
