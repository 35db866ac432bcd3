"""Kraken's ledgers export: a trade is two rows sharing a `refid` (a `trade` pair, or a `spend` and a `receive`),
one moving BTC, the other the money it was paid with."""

from collections import defaultdict
from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain.csv_formats import (
    USD_CURRENCIES,
    ParsedLine,
    Record,
    Records,
    RowError,
    RowSkipped,
    cell,
    money,
    optional_money,
    parse_time,
    price_of,
    require_usd,
    skipped,
    trade,
)
from portfolio.domain.errors import InvalidTransaction

COLUMNS = frozenset({"txid", "refid", "time", "type", "asset", "amount", "fee"})
TRADE_TYPES = frozenset({"trade", "spend", "receive"})
BTC_ASSETS = frozenset({"XXBT", "XBT", "BTC"})
ANY_UNIT = frozenset({"BTC", "XBT", "XXBT", *USD_CURRENCIES, "ZUSD"})


def currency(asset: str) -> str:
    """Kraken's older four-letter codes (ZUSD, ZEUR, XXBT) by their usual names."""
    asset = asset.strip().upper()
    return asset[1:] if len(asset) == 4 and asset[0] in "XZ" and asset not in ("USDT", "USDC") else asset


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    results: list[ParsedLine] = []
    legs: dict[str, list[tuple[int, Record]]] = defaultdict(list)
    for line, record in records:
        if isinstance(record, RowError):
            results.append(record)
        elif cell(record, "type").lower() in TRADE_TYPES:
            legs[cell(record, "refid")].append((line, record))
        else:
            results.append(skipped(line, cell(record, "type"), cell(record, "asset")))
    for refid, rows in legs.items():
        results += paired(refid, rows, now)
    return sorted(results, key=lambda result: result.line)


def paired(refid: str, rows: list[tuple[int, Record]], now: datetime) -> list[ParsedLine]:
    """One trade from the rows of one refid: the BTC leg's line carries the trade, the other leg is skipped."""
    btc = [(line, record) for line, record in rows if cell(record, "asset").upper() in BTC_ASSETS]
    other = [(line, record) for line, record in rows if cell(record, "asset").upper() not in BTC_ASSETS]
    if not btc:
        return [skipped(line, cell(record, "type"), cell(record, "asset")) for line, record in rows]
    line, btc_row = btc[0]
    if len(btc) != 1 or len(other) != 1:
        error = RowError(line, f"Kraken trade {refid[:40]!r} should have one BTC row and one money row; it has "
                               f"{len(btc)} and {len(other)}.")
        return [error, *(RowSkipped(other_line, f"part of the trade on line {line}")
                         for other_line, _ in rows if other_line != line)]
    money_line, money_row = other[0]
    rest = [RowSkipped(money_line, f"the {currency(cell(money_row, 'asset'))[:20]} side of the BTC trade on line "
                                   f"{line}")]
    try:
        require_usd(currency(cell(money_row, "asset")))
        btc_amount = money(cell(btc_row, "amount"), "amount_btc", ANY_UNIT)
        usd_amount = money(cell(money_row, "amount"), "amount", ANY_UNIT)
        if btc_amount == 0 or (btc_amount > 0) == (usd_amount > 0):
            raise InvalidTransaction("amount_btc", "The BTC row and the money row of this trade should move in "
                                                   "opposite directions.")
        price = price_of(usd_amount, btc_amount)
        side = Side.BUY if btc_amount > 0 else Side.SELL
        return [trade(line, side, abs(btc_amount), parse_time(cell(btc_row, "time")), now, price_usd=price,
                      fee_btc=optional_money(cell(btc_row, "fee"), "fee", ANY_UNIT),
                      fee_usd=optional_money(cell(money_row, "fee"), "fee_usd", ANY_UNIT)), *rest]
    except InvalidTransaction as error:
        return [RowError(line, error.message), *rest]
