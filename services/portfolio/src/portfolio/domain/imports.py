"""Reading an import file: find its header (after any preamble lines), name its format, and read its rows."""

import csv
import io
from datetime import datetime

from contracts.portfolios import IMPORT_FORMATS

from portfolio.domain.csv_formats import GENERIC_COLUMNS, ParsedLine, RowError, each_row, generic_row, records
from portfolio.domain.exchanges import exchange_of

PREAMBLE_LINES = 20
"""How far down a file its header is looked for (exchanges put a title, an account or a company address first)."""
REQUIRED_GENERIC = ("side", "amount_btc", "at")


def _header_fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return []


def parse_transactions_csv(text: str, now: datetime) -> tuple[str, list[ParsedLine]]:
    """(format name, one result per data row). Line numbers are the file's own, 1-based.

    Raises DomainError for a file with more than MAX_IMPORT_ROWS rows."""
    # Lines end only at \n, \r\n or \r, as in CSV; str.splitlines would also cut at U+2028 and friends.
    lines = io.StringIO(text.lstrip("\ufeff"), newline="").readlines()
    for index, line in enumerate(lines[:PREAMBLE_LINES]):
        fields = [name.strip() for name in _header_fields(line)]
        exchange = exchange_of(fields)
        if exchange is not None:
            header, rows = records(lines[index:], index)
            return exchange.name, exchange.read(header, rows, now)
        if all(column in fields for column in REQUIRED_GENERIC):
            _, rows = records(lines[index:], index)
            return "generic", each_row(rows, generic_row, now)
    header = [name.strip() for name in _header_fields(lines[0])] if lines else []
    missing = [column for column in REQUIRED_GENERIC if column not in header]
    exchanges = ", ".join(title for name, title in IMPORT_FORMATS.items() if name != "generic")
    return "unknown", [RowError(1, f"The header must be {','.join(GENERIC_COLUMNS)} (missing "
                                   f"{', '.join(missing)}), or that of an export from {exchanges}.")]
