"""Coinbase's transaction history: one row per transaction; newer files start with a few preamble lines."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows

COLUMNS = frozenset({"Timestamp", "Transaction Type", "Asset", "Quantity Transacted"})
SIDES = {"buy": Side.BUY, "advanced trade buy": Side.BUY, "sell": Side.SELL, "advanced trade sell": Side.SELL}


def read(header: list[str], records: rows.Records, now: datetime) -> list[rows.ParsedLine]:
    older = "Spot Price at Transaction" in header
    price_column = "Spot Price at Transaction" if older else "Price at Transaction"
    currency_column = "Spot Price Currency" if older else "Price Currency"

    def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
        kind, asset = rows.cell(record, "Transaction Type"), rows.cell(record, "Asset")
        if asset != "BTC" or kind.lower() not in SIDES:
            return rows.skipped(line, kind, asset)
        rows.require_usd(rows.cell(record, currency_column))
        price = rows.cell(record, price_column)
        # newer files write a sell's quantity (and money) negative: the side says the direction
        return rows.trade(line, SIDES[kind.lower()],
                          abs(rows.money(rows.cell(record, "Quantity Transacted"), "amount_btc", rows.BTC)),
                          rows.parse_time(rows.cell(record, "Timestamp")), now,
                          price_usd=abs(rows.money(price, "price_usd")) if price else None,
                          fee_usd=abs(rows.optional_money(rows.cell(record, "Fees and/or Spread"), "fee_usd")),
                          note=record.get("Notes"))

    return rows.each_row(records, row, now)
