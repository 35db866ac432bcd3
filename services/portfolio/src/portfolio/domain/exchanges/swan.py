"""Swan Bitcoin's transaction export: two lines of company details, then one row per event."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    skipped,
    trade,
)
from portfolio.domain.errors import InvalidTransaction

WITH_OFFSET = re.compile(r"(?:[+-][0-9]{2}(?::?[0-9]{2})?|Z)$")
COLUMNS = frozenset({"Event", "Date", "Status", "Unit Count", "Asset Type", "BTC Price"})


def swan_time(date: str, zone: str) -> datetime:
    """`2024-11-16 17:30:06+00`; a time without an offset is in the row's Timezone."""
    at = parse_time(date)
    if WITH_OFFSET.search(date.strip()) or not zone or zone.upper() == "UTC":
        return at
    try:
        return at.replace(tzinfo=ZoneInfo(zone[:60]))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTransaction("at", f"Timezone {zone[:40]!r} is not a time zone name.") from None


def row(line: int, record: Record, now: datetime) -> ParsedRow | RowSkipped:
    event, asset, status = cell(record, "Event"), cell(record, "Asset Type"), cell(record, "Status")
    if event.lower() != "purchase" or asset.upper() != "BTC":
        return skipped(line, event, asset)
    if status.lower() != "settled":
        return RowSkipped(line, f"the purchase is {status[:20] or 'of no status'}, not settled")
    return trade(line, Side.BUY, money(cell(record, "Unit Count"), "amount_btc", BTC),
                 swan_time(cell(record, "Date"), cell(record, "Timezone")), now,
                 price_usd=money(cell(record, "BTC Price"), "price_usd"),
                 fee_usd=optional_money(cell(record, "Fee USD"), "fee_usd"))


def read(header: list[str], records: Records, now: datetime) -> list[ParsedLine]:
    return each_row(records, row, now)
