"""Binance's spot trade history: one row per fill, amounts with their asset as a suffix (`0.00100000BTC`)."""

from datetime import datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows
from portfolio.domain.errors import InvalidTransaction

COLUMNS = frozenset({"Date(UTC)", "Pair", "Side", "Price", "Executed", "Fee"})


def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
    pair = rows.cell(record, "Pair").upper().replace("/", "").replace("-", "")
    side_text = rows.cell(record, "Side")
    side = {"buy": Side.BUY, "sell": Side.SELL}.get(side_text.lower())
    if side is None or "BTC" not in pair:
        return rows.skipped(line, side_text, pair)
    if not pair.startswith("BTC"):  # BTC is the quote: another asset bought or sold for BTC
        raise InvalidTransaction("price_usd", f"{pair[:20]} trades {pair.removesuffix('BTC')[:20]} for BTC; only "
                                              "BTC priced in USD (or USDT, USDC, FDUSD, BUSD) can be imported.")
    quote = pair.removeprefix("BTC")
    rows.require_usd(quote)
    fee, fee_asset = rows.quantity(rows.cell(record, "Fee"), "fee_usd")
    fee_usd, fee_btc = rows.fee_by_currency(fee, fee_asset or quote)
    return rows.trade(line, side, abs(rows.money(rows.cell(record, "Executed"), "amount_btc", rows.BTC)),
                      rows.parse_time(rows.cell(record, "Date(UTC)")), now,
                      price_usd=rows.money(rows.cell(record, "Price"), "price_usd"), fee_usd=fee_usd, fee_btc=fee_btc)
