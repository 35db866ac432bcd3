"""Reading transaction CSV files (the generic format and Coinbase's export) and writing the generic one."""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from contracts.portfolios import MAX_IMPORT_FIELD_CHARS, MAX_IMPORT_ROWS, Side
from contracts.types import UNIX_SECONDS_TEXT, InvalidValue, from_unix_seconds, parse_decimal

from portfolio.domain.errors import DomainError, InvalidTransaction
from portfolio.domain.rules import validate_amount, validate_fee, validate_note, validate_price, validate_time
from portfolio.domain.trades import Trade

GENERIC_COLUMNS = ("side", "amount_btc", "at", "fee_usd", "price_usd", "note")
COINBASE_SIDES = {"buy": Side.BUY, "advanced trade buy": Side.BUY, "sell": Side.SELL, "advanced trade sell": Side.SELL}
USD_CURRENCIES = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD"})
"""USD and the USD stablecoins: the only price currencies until several currencies exist."""
THOUSANDS_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")
CURRENCY_SUFFIX = re.compile(r"(?<=[0-9.])\s*([A-Za-z]{3,5})$")
"""A currency code after a number ("62000 USD", "0.01BTC"); "NaN" alone is not one."""


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    side: Side
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal
    price_usd: Decimal | None
    note: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class RowSkipped:
    """A row that is not a BTC trade (a deposit, another asset): neither imported nor an error."""

    line: int
    reason: str


ParsedLine = ParsedRow | RowError | RowSkipped


def _money(text: str, column: str, units: frozenset[str]) -> Decimal:
    """An exchange's way of writing a number ("$62,000.00", "0.01 BTC") read under the contract's decimal grammar."""
    raw = text.strip()
    cleaned = raw
    suffix = CURRENCY_SUFFIX.search(cleaned)
    if suffix:
        if suffix.group(1).upper() not in units:
            raise InvalidTransaction(column, f"{column} {raw!r} is in {suffix.group(1)}, not {'/'.join(sorted(units))}.")
        cleaned = cleaned[:suffix.start()]
    cleaned = re.sub(r"^([+-]?)\$", r"\1", cleaned)
    if "," in cleaned:
        # Thousands separators only: "1,5" (a decimal comma) would otherwise be read as 15.
        if not THOUSANDS_GROUPED.fullmatch(cleaned):
            raise InvalidTransaction(column, f"{column} {raw!r} is not a number: commas may only separate "
                                             "thousands, as in 62,000.50.")
        cleaned = cleaned.replace(",", "")
    try:
        return parse_decimal(cleaned)
    except InvalidValue as error:
        raise InvalidTransaction(column, f"{column}: {error}") from None


def parse_time(text: str) -> datetime:
    """ISO 8601 (a naive time is UTC), 'YYYY-MM-DD HH:MM:SS UTC', or unix seconds, within the contract's range."""
    raw = text.strip()
    try:
        if UNIX_SECONDS_TEXT.fullmatch(raw):
            return from_unix_seconds(int(raw))
        if not raw.isascii():  # other scripts' digits are not a time, whatever fromisoformat makes of them
            raise ValueError(raw)
        parsed = datetime.fromisoformat(raw.removesuffix(" UTC").replace("Z", "+00:00"))
    except InvalidValue as error:
        raise InvalidTransaction("at", str(error)) from None
    except ValueError:
        raise InvalidTransaction("at", f"Time {raw[:40]!r} is not ISO 8601 or unix seconds.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed  # validate_time converts to UTC


def _row(line: int, side: Side, amount: str, at: str, fee: str, price: str, note: str | None, now: datetime,
         price_units: frozenset[str] = USD_CURRENCIES) -> ParsedRow:
    return ParsedRow(
        line=line,
        side=side,
        amount_btc=validate_amount(_money(amount, "amount_btc", frozenset({"BTC"}))),
        at=validate_time(parse_time(at), now),
        fee_usd=validate_fee(_money(fee, "fee_usd", price_units) if fee.strip() else Decimal(0)),
        price_usd=validate_price(_money(price, "price_usd", price_units) if price.strip() else None),
        note=validate_note((note or "").strip() or None),
    )


def _records(lines: list[str], line_offset: int = 0) -> tuple[list[str], Iterator[tuple[int, dict[str, str] | RowError]]]:
    """The header, then (line, record or RowError) per data row: a row too long or unreadable is a row error,
    and a file with more than MAX_IMPORT_ROWS rows is refused as a whole."""
    reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error:
        header = []

    def rows() -> Iterator[tuple[int, dict[str, str] | RowError]]:
        count = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:  # e.g. a field over the csv module's own 128 KiB limit
                fields = None
            if fields == []:
                continue  # a blank line is not a row
            count += 1
            if count > MAX_IMPORT_ROWS:
                raise DomainError(f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it into several files.",
                                  {"field": "file", "max_rows": MAX_IMPORT_ROWS})
            line = reader.line_num + line_offset
            if fields is None or any(len(field) > MAX_IMPORT_FIELD_CHARS for field in fields):
                yield line, RowError(line, f"A field of this row is longer than {MAX_IMPORT_FIELD_CHARS:,} "
                                           "characters (or the row is not valid CSV).")
                continue
            yield line, dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=False))

    return header, rows()


def _generic(records: Iterator[tuple[int, dict[str, str] | RowError]], now: datetime) -> list[ParsedLine]:
    rows: list[ParsedLine] = []
    for line, record in records:
        if isinstance(record, RowError):
            rows.append(record)
            continue
        try:
            side_text = (record.get("side") or "").strip().lower()
            if side_text not in ("buy", "sell"):
                raise InvalidTransaction("side", f"side must be buy or sell, not {side_text[:20]!r}.")
            rows.append(_row(line, Side(side_text), record.get("amount_btc") or "", record.get("at") or "",
                             record.get("fee_usd") or "", record.get("price_usd") or "", record.get("note"), now))
        except InvalidTransaction as error:
            rows.append(RowError(line, error.message))
    return rows


def _coinbase(header: list[str], records: Iterator[tuple[int, dict[str, str] | RowError]], now: datetime
              ) -> list[ParsedLine]:
    older = "Spot Price at Transaction" in header
    price_column = "Spot Price at Transaction" if older else "Price at Transaction"
    currency_column = "Spot Price Currency" if older else "Price Currency"
    rows: list[ParsedLine] = []
    for line, record in records:
        if isinstance(record, RowError):
            rows.append(record)
            continue
        kind = (record.get("Transaction Type") or "").strip()
        asset = (record.get("Asset") or "").strip()
        if asset != "BTC" or kind.lower() not in COINBASE_SIDES:
            rows.append(RowSkipped(line, f"{kind[:40] or 'untyped'} of {asset[:20] or 'no asset'} is not a BTC buy "
                                         "or sell"))
            continue
        currency = (record.get(currency_column) or "").strip().upper()
        if currency not in USD_CURRENCIES:
            rows.append(RowError(line, f"This trade is priced in {currency[:20] or 'no currency'}; only USD prices "
                                       "(or USDT, USDC, FDUSD, BUSD) can be imported for now."))
            continue
        try:
            rows.append(_row(line, COINBASE_SIDES[kind.lower()], record.get("Quantity Transacted") or "",
                             record.get("Timestamp") or "", record.get("Fees and/or Spread") or "",
                             record.get(price_column) or "", record.get("Notes"), now))
        except InvalidTransaction as error:
            rows.append(RowError(line, error.message))
    return rows


def parse_transactions_csv(text: str, now: datetime) -> tuple[str, list[ParsedLine]]:
    """(format name, one result per data row). Line numbers are the file's own, 1-based.

    Raises DomainError for a file with more than MAX_IMPORT_ROWS rows."""
    # Lines end only at \n, \r\n or \r, as in CSV; str.splitlines would also cut at U+2028 and friends.
    lines = io.StringIO(text.lstrip("\ufeff"), newline="").readlines()
    for index, line in enumerate(lines[:20]):
        if "Timestamp" in line and "Transaction Type" in line:
            header, records = _records(lines[index:], index)
            return "coinbase", _coinbase(header, records, now)
    header, records = _records(lines)
    missing = [c for c in ("side", "amount_btc", "at") if c not in header]
    if missing:
        return "unknown", [RowError(1, "The header must be side,amount_btc,at,fee_usd,price_usd,note "
                                       "(or a Coinbase transaction export); missing " + ", ".join(missing) + ".")]
    return "generic", _generic(records, now)


def export_transactions_csv(trades: Iterable[Trade], notes: dict[str, str | None] | None = None) -> str:
    """The generic format, oldest first; importing it back gives the same trades."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GENERIC_COLUMNS)
    for trade in sorted(trades, key=lambda t: t.timeline_key):
        writer.writerow([trade.side.value, f"{trade.amount_btc:f}", trade.at.isoformat().replace("+00:00", "Z"),
                         f"{trade.fee_usd:f}", "" if trade.price_usd is None else f"{trade.price_usd:f}",
                         (notes or {}).get(trade.transaction_id) or ""])
    return out.getvalue()
