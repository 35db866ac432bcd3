"""Swan Bitcoin's transaction export: two lines of company details, then one row per event."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.portfolios import Side

from portfolio.domain import csv_formats as rows
from portfolio.domain.errors import InvalidTransaction

WITH_OFFSET = re.compile(r"(?:[+-][0-9]{2}(?::?[0-9]{2})?|Z)$")
COLUMNS = frozenset({"Event", "Date", "Status", "Unit Count", "Asset Type", "BTC Price"})


def swan_time(date: str, zone: str) -> datetime:
    """`2024-11-16 17:30:06+00`; a time without an offset is in the row's Timezone."""
    at = rows.parse_time(date)
    if WITH_OFFSET.search(date.strip()) or not zone or zone.upper() == "UTC":
        return at
    try:
        return at.replace(tzinfo=ZoneInfo(zone[:60]))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTransaction("at", f"Timezone {zone[:40]!r} is not a time zone name.") from None


def row(line: int, record: rows.Record, now: datetime) -> rows.ParsedRow | rows.RowSkipped:
    event, asset = rows.cell(record, "Event"), rows.cell(record, "Asset Type")
    if event.lower() != "purchase" or asset.upper() != "BTC":
        return rows.skipped(line, event, asset)
    status = rows.cell(record, "Status")
    if status.lower() != "settled":
        return rows.RowSkipped(line, f"the purchase is {status[:20] or 'of no status'}, not settled")
    return rows.trade(line, Side.BUY, rows.money(rows.cell(record, "Unit Count"), "amount_btc", rows.BTC),
                      swan_time(rows.cell(record, "Date"), rows.cell(record, "Timezone")), now,
                      price_usd=rows.money(rows.cell(record, "BTC Price"), "price_usd"),
                      fee_usd=rows.optional_money(rows.cell(record, "Fee USD"), "fee_usd"))
