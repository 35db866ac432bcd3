"""Kraken's ledgers export: a trade is two rows sharing a `refid` (a `trade` pair, or a `spend` and a `receive`),
one moving BTC, the other the money it was paid with."""

from collections import defaultdict
from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows
from portfolio.domain.errors import InvalidTransaction

COLUMNS = frozenset({"txid", "refid", "time", "type", "asset", "amount", "fee"})
TRADE_TYPES = frozenset({"trade", "spend", "receive"})
BTC_ASSETS = frozenset({"XXBT", "XBT", "BTC"})
ANY_UNIT = frozenset({"BTC", "XBT", "XXBT", *rows.USD_CURRENCIES, "ZUSD"})
Leg = tuple[int, rows.Record]


def currency(asset: str) -> str:
    """Kraken's older four-letter codes (ZUSD, ZEUR, XXBT) by their usual names."""
    asset = asset.strip().upper()
    return asset[1:] if len(asset) == 4 and asset[0] in "XZ" and asset not in ("USDT", "USDC") else asset


def read(header: list[str], records: rows.Records, now: datetime) -> list[rows.ParsedLine]:
    results: list[rows.ParsedLine] = []
    legs: dict[str, list[Leg]] = defaultdict(list)
    for line, record in records:
        if isinstance(record, rows.RowError):
            results.append(record)
        elif rows.cell(record, "type").lower() in TRADE_TYPES:
            legs[rows.cell(record, "refid")].append((line, record))
        else:
            results.append(rows.skipped(line, rows.cell(record, "type"), rows.cell(record, "asset")))
    for refid, legs_of_trade in legs.items():
        results += paired(refid, legs_of_trade, now)
    return sorted(results, key=lambda result: result.line)


def paired(refid: str, legs: list[Leg], now: datetime) -> list[rows.ParsedLine]:
    """One trade from the rows of one refid: the BTC leg's line carries the trade, the other leg is skipped."""
    btc = [(line, record) for line, record in legs if rows.cell(record, "asset").upper() in BTC_ASSETS]
    other = [(line, record) for line, record in legs if rows.cell(record, "asset").upper() not in BTC_ASSETS]
    if not btc:
        return [rows.skipped(line, rows.cell(record, "type"), rows.cell(record, "asset")) for line, record in legs]
    line, btc_row = btc[0]
    if len(btc) != 1 or len(other) != 1:
        error = rows.RowError(line, f"Kraken trade {refid[:40]!r} should have one BTC row and one money row; it "
                                    f"has {len(btc)} and {len(other)}.")
        return [error, *(rows.RowSkipped(other_line, f"part of the trade on line {line}")
                         for other_line, _ in legs if other_line != line)]
    money_line, money_row = other[0]
    paid_in = currency(rows.cell(money_row, "asset"))
    rest = [rows.RowSkipped(money_line, f"the {paid_in[:20]} side of the BTC trade on line {line}")]
    try:
        rows.require_usd(paid_in)
        btc_amount = rows.money(rows.cell(btc_row, "amount"), "amount_btc", ANY_UNIT)
        usd_amount = rows.money(rows.cell(money_row, "amount"), "amount", ANY_UNIT)
        if btc_amount == 0 or (btc_amount > 0) == (usd_amount > 0):
            raise InvalidTransaction("amount_btc", "The BTC row and the money row of this trade should move in "
                                                   "opposite directions.")
        side = Side.BUY if btc_amount > 0 else Side.SELL
        return [rows.trade(line, side, abs(btc_amount), rows.parse_time(rows.cell(btc_row, "time")), now,
                           price_usd=rows.price_of(usd_amount, btc_amount),
                           fee_btc=rows.optional_money(rows.cell(btc_row, "fee"), "fee", ANY_UNIT),
                           fee_usd=rows.optional_money(rows.cell(money_row, "fee"), "fee_usd", ANY_UNIT)), *rest]
    except InvalidTransaction as error:
        return [rows.RowError(line, error.message), *rest]
