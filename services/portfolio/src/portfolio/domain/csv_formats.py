"""Reading transaction CSV files (the generic format and Coinbase's export) and writing the generic one."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from contracts.portfolios import Side

from portfolio.domain.errors import InvalidTransaction
from portfolio.domain.rules import validate_amount, validate_fee, validate_price, validate_time
from portfolio.domain.trades import Trade

GENERIC_COLUMNS = ("side", "amount_btc", "at", "fee_usd", "price_usd", "note")
COINBASE_SIDES = {"buy": Side.BUY, "advanced trade buy": Side.BUY, "sell": Side.SELL, "advanced trade sell": Side.SELL}


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


def _money(text: str, column: str) -> Decimal:
    cleaned = text.strip().replace("$", "").replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidTransaction(column, f"{column} {text.strip()!r} is not a number.") from None
    if not value.is_finite():
        raise InvalidTransaction(column, f"{column} {text.strip()!r} is not a number.")
    return value


def parse_time(text: str) -> datetime:
    """ISO 8601 (a naive time is UTC), 'YYYY-MM-DD HH:MM:SS UTC', or unix seconds."""
    raw = text.strip()
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    try:
        parsed = datetime.fromisoformat(raw.removesuffix(" UTC").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidTransaction("at", f"Time {raw!r} is not ISO 8601 or unix seconds.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _row(line: int, side: Side, amount: str, at: str, fee: str, price: str, note: str | None, now: datetime
         ) -> ParsedRow:
    return ParsedRow(
        line=line,
        side=side,
        amount_btc=validate_amount(_money(amount, "amount_btc")),
        at=validate_time(parse_time(at), now),
        fee_usd=validate_fee(_money(fee, "fee_usd") if fee.strip() else Decimal(0)),
        price_usd=validate_price(_money(price, "price_usd") if price.strip() else None),
        note=(note or "").strip() or None,
    )


def _generic(reader: "csv.DictReader[str]", now: datetime) -> list[ParsedLine]:
    rows: list[ParsedLine] = []
    for record in reader:
        line = reader.line_num
        try:
            side_text = (record.get("side") or "").strip().lower()
            if side_text not in ("buy", "sell"):
                raise InvalidTransaction("side", f"side must be buy or sell, not {side_text!r}.")
            rows.append(_row(line, Side(side_text), record.get("amount_btc") or "", record.get("at") or "",
                             record.get("fee_usd") or "", record.get("price_usd") or "", record.get("note"), now))
        except InvalidTransaction as error:
            rows.append(RowError(line, error.message))
    return rows


def _coinbase(reader: "csv.DictReader[str]", now: datetime, line_offset: int) -> list[ParsedLine]:
    price_column = "Spot Price at Transaction" if "Spot Price at Transaction" in (reader.fieldnames or ()) \
        else "Price at Transaction"
    rows: list[ParsedLine] = []
    for record in reader:
        line = reader.line_num + line_offset
        kind = (record.get("Transaction Type") or "").strip()
        asset = (record.get("Asset") or "").strip()
        if asset != "BTC" or kind.lower() not in COINBASE_SIDES:
            rows.append(RowSkipped(line, f"{kind or 'untyped'} of {asset or 'no asset'} is not a BTC buy or sell"))
            continue
        try:
            rows.append(_row(line, COINBASE_SIDES[kind.lower()], record.get("Quantity Transacted") or "",
                             record.get("Timestamp") or "", record.get("Fees and/or Spread") or "",
                             record.get(price_column) or "", record.get("Notes"), now))
        except InvalidTransaction as error:
            rows.append(RowError(line, error.message))
    return rows


def parse_transactions_csv(text: str, now: datetime) -> tuple[str, list[ParsedLine]]:
    """(format name, one result per data row). Line numbers are the file's own, 1-based."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    for index, line in enumerate(lines[:20]):
        if "Timestamp" in line and "Transaction Type" in line:
            return "coinbase", _coinbase(csv.DictReader(lines[index:]), now, index)
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [c for c in ("side", "amount_btc", "at") if c not in header]
    if missing:
        return "unknown", [RowError(1, "The header must be side,amount_btc,at,fee_usd,price_usd,note "
                                       "(or a Coinbase transaction export); missing " + ", ".join(missing) + ".")]
    reader.fieldnames = header
    return "generic", _generic(reader, now)


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
