"""Bitstamp's transactions export: one row per transaction; trades carry their amount, rate and fee."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain.csv_formats import (
    BTC,
    USD_OR_BTC,
    ParsedLine,
    ParsedRow,
    Record,
    Records,
    RowSkipped,
    cell,
    each_row,
    fee_by_currency,
    money,
    optional_money,
    parse_time,
    require_usd,
    skipped,
    trade,
)

COLUMNS = frozenset({"Type", "Subtype", "Datetime", "Amount", "Amount currency", "Rate", "Rate currency"})
TRADE_TYPES = frozenset({"market", "limit", "instant"})


def row(line: int, record: Record, now: datetime) -> ParsedRow | RowSkipped:
    kind, subtype, asset = cell(record, "Type"), cell(record, "Subtype"), cell(record, "Amount currency")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(subtype.lower())
    if kind.lower() not in TRADE_TYPES or side is None or asset.upper() != "BTC":
        return skipped(line, f"{kind} {subtype}".strip(), asset)
    require_usd(cell(record, "Rate currency"))
    fee_usd, fee_btc = fee_by_currency(optional_money(cell(record, "Fee"), "fee_usd", USD_OR_BTC),
                                       cell(record, "Fee currency"))
    return trade(line, side, abs(money(cell(record, "Amount"), "amount_btc", BTC)),
                 parse_time(cell(record, "Datetime")), now, price_usd=money(cell(record, "Rate"), "price_usd"),
                 fee_usd=fee_usd, fee_btc=fee_btc)


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    return each_row(records, row, now)
