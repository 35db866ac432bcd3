"""Bitstamp's transactions export: one row per transaction; trades carry their amount, rate and fee."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows

COLUMNS = frozenset({"Type", "Subtype", "Datetime", "Amount", "Amount currency", "Rate", "Rate currency"})
TRADE_TYPES = frozenset({"market", "limit", "instant"})


def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
    kind, subtype = rows.cell(record, "Type"), rows.cell(record, "Subtype")
    asset = rows.cell(record, "Amount currency")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(subtype.lower())
    if kind.lower() not in TRADE_TYPES or side is None or asset.upper() != "BTC":
        return rows.skipped(line, f"{kind} {subtype}".strip(), asset)
    rows.require_usd(rows.cell(record, "Rate currency"))
    fee_usd, fee_btc = rows.fee_by_currency(rows.optional_money(rows.cell(record, "Fee"), "fee_usd", rows.USD_OR_BTC),
                                            rows.cell(record, "Fee currency"))
    return rows.trade(line, side, abs(rows.money(rows.cell(record, "Amount"), "amount_btc", rows.BTC)),
                      rows.parse_time(rows.cell(record, "Datetime")), now,
                      price_usd=rows.money(rows.cell(record, "Rate"), "price_usd"), fee_usd=fee_usd, fee_btc=fee_btc)
