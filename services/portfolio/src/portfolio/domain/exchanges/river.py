"""River's account activity: one row per transaction as sent and received amounts, each with its currency."""

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
    price_of,
    require_usd,
    skipped,
    trade,
)

COLUMNS = frozenset({"Date", "Sent Amount", "Sent Currency", "Received Amount", "Received Currency", "Tag"})


def row(line: int, record: Record, now: datetime) -> ParsedRow | RowSkipped:
    tag = cell(record, "Tag")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(tag.lower())
    btc_end, money_end = ("Received", "Sent") if side is Side.BUY else ("Sent", "Received")
    if side is None or cell(record, f"{btc_end} Currency").upper() != "BTC":
        return skipped(line, tag, cell(record, "Received Currency") or cell(record, "Sent Currency"))
    require_usd(cell(record, f"{money_end} Currency"))
    amount = abs(money(cell(record, f"{btc_end} Amount"), "amount_btc", BTC))
    price = price_of(money(cell(record, f"{money_end} Amount"), "price_usd"), amount)
    fee_usd, fee_btc = fee_by_currency(optional_money(cell(record, "Fee Amount"), "fee_usd", USD_OR_BTC),
                                       cell(record, "Fee Currency"))
    return trade(line, side, amount, parse_time(cell(record, "Date")), now, price_usd=price, fee_usd=fee_usd,
                 fee_btc=fee_btc)


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    return each_row(records, row, now)
