"""Strike's transaction history: one row per transaction, times like `Jan 02 2024 15:04:05` (UTC); its Amount BTC
is already the change in holdings, a BTC fee only counts as USD."""

import re
from datetime import UTC, datetime

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows
from portfolio.domain.errors import InvalidTransaction

COLUMNS = frozenset({"Date & Time (UTC)", "Transaction Type", "Amount BTC", "BTC Price"})
SIDES = {"purchase": Side.BUY, "buy": Side.BUY, "sale": Side.SELL, "sell": Side.SELL}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
STRIKE_TIME = re.compile(r"([A-Za-z]{3})\.? (\d{1,2}),? (\d{4}),? (\d{1,2}):(\d{2}):(\d{2})")


def strike_time(text: str) -> datetime:
    """`Jan 02 2024 15:04:05`, read without the locale (strptime's %b depends on it)."""
    found = STRIKE_TIME.fullmatch(text.strip())
    if not found or found.group(1).lower() not in MONTHS:
        raise InvalidTransaction("at", f"Time {text.strip()[:40]!r} is not like Jan 02 2024 15:04:05.")
    month = MONTHS.index(found.group(1).lower()) + 1
    day, year, hour, minute, second = (int(found.group(n)) for n in (2, 3, 4, 5, 6))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise InvalidTransaction("at", f"Time {text.strip()[:40]!r} is not a date.") from None


def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
    kind = rows.cell(record, "Transaction Type")
    if kind.lower() not in SIDES:
        return rows.skipped(line, kind, "BTC" if rows.cell(record, "Amount BTC") else "USD")
    return rows.trade(line, SIDES[kind.lower()], abs(rows.money(rows.cell(record, "Amount BTC"), "amount_btc", rows.BTC)),
                      strike_time(rows.cell(record, "Date & Time (UTC)")), now,
                      price_usd=rows.money(rows.cell(record, "BTC Price"), "price_usd"),
                      fee_usd=rows.optional_money(rows.cell(record, "Fee USD"), "fee_usd"),
                      fee_btc=abs(rows.optional_money(rows.cell(record, "Fee BTC"), "fee_btc", rows.BTC)),
                      note=record.get("Note"), amount_is_net=True)  # Amount BTC is what the account gained or gave
