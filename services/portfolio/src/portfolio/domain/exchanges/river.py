"""River's account activity: one row per transaction as sent and received amounts, each with its currency."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows

COLUMNS = frozenset({"Date", "Sent Amount", "Sent Currency", "Received Amount", "Received Currency", "Tag"})


def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
    tag = rows.cell(record, "Tag")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(tag.lower())
    btc_end, money_end = ("Received", "Sent") if side is Side.BUY else ("Sent", "Received")
    if side is None or rows.cell(record, f"{btc_end} Currency").upper() != "BTC":
        return rows.skipped(line, tag, rows.cell(record, "Received Currency") or rows.cell(record, "Sent Currency"))
    rows.require_usd(rows.cell(record, f"{money_end} Currency"))
    amount = abs(rows.money(rows.cell(record, f"{btc_end} Amount"), "amount_btc", rows.BTC))
    price = rows.price_of(rows.money(rows.cell(record, f"{money_end} Amount"), "price_usd"), amount)
    fee_usd, fee_btc = rows.fee_by_currency(
        rows.optional_money(rows.cell(record, "Fee Amount"), "fee_usd", rows.USD_OR_BTC),
        rows.cell(record, "Fee Currency"))
    return rows.trade(line, side, amount, rows.parse_time(rows.cell(record, "Date")), now, price_usd=price,
                      fee_usd=fee_usd, fee_btc=fee_btc)
