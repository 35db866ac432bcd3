"""Coinbase's transaction history: one row per transaction; newer files start with a few preamble lines."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain.csv_formats import (
    BTC,
    ParsedLine,
    ParsedRow,
    Record,
    Records,
    RowSkipped,
    cell,
    each_row,
    money,
    optional_money,
    parse_time,
    require_usd,
    skipped,
    trade,
)

COLUMNS = frozenset({"Timestamp", "Transaction Type", "Asset", "Quantity Transacted"})
SIDES = {"buy": Side.BUY, "advanced trade buy": Side.BUY, "sell": Side.SELL, "advanced trade sell": Side.SELL}


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    older = "Spot Price at Transaction" in header
    price_column = "Spot Price at Transaction" if older else "Price at Transaction"
    currency_column = "Spot Price Currency" if older else "Price Currency"

    def row(line: int, record: Record, now: datetime) -> ParsedRow | RowSkipped:
        kind, asset = cell(record, "Transaction Type"), cell(record, "Asset")
        if asset != "BTC" or kind.lower() not in SIDES:
            return skipped(line, kind, asset)
        require_usd(cell(record, currency_column))
        price = cell(record, price_column)
        # newer files write a sell's quantity (and money) negative: the side says the direction
        return trade(line, SIDES[kind.lower()], abs(money(cell(record, "Quantity Transacted"), "amount_btc", BTC)),
                     parse_time(cell(record, "Timestamp")), now,
                     price_usd=abs(money(price, "price_usd")) if price else None,
                     fee_usd=abs(optional_money(cell(record, "Fees and/or Spread"), "fee_usd")),
                     note=record.get("Notes"))

    return each_row(records, row, now)
