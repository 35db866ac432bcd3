"""Binance's spot trade history: one row per fill, amounts with their asset as a suffix (`0.00100000BTC`)."""

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
    fee_by_currency,
    money,
    parse_time,
    quantity,
    require_usd,
    skipped,
    trade,
)
from portfolio.domain.errors import InvalidTransaction

COLUMNS = frozenset({"Date(UTC)", "Pair", "Side", "Price", "Executed", "Fee"})


def row(line: int, record: Record, now: datetime) -> ParsedRow | RowSkipped:
    pair, side_text = cell(record, "Pair").upper().replace("/", "").replace("-", ""), cell(record, "Side")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(side_text.lower())
    if side is None or "BTC" not in pair:
        return skipped(line, side_text, pair)
    if not pair.startswith("BTC"):  # BTC is the quote: another asset bought or sold for BTC
        raise InvalidTransaction("price_usd", f"{pair[:20]} trades {pair.removesuffix('BTC')[:20]} for BTC; only "
                                              "BTC priced in USD (or USDT, USDC, FDUSD, BUSD) can be imported.")
    quote = pair.removeprefix("BTC")
    require_usd(quote)
    fee, fee_asset = quantity(cell(record, "Fee"), "fee_usd")
    fee_usd, fee_btc = fee_by_currency(fee, fee_asset or quote)
    return trade(line, side, abs(money(cell(record, "Executed"), "amount_btc", BTC)),
                 parse_time(cell(record, "Date(UTC)")), now,
                 price_usd=money(cell(record, "Price"), "price_usd"),
                 fee_usd=fee_usd, fee_btc=fee_btc)


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    return each_row(records, row, now)
