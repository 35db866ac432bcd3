"""Reading transaction CSV files: the row results, the money/time/row rules every format shares, the generic
format itself, and writing the generic format back out."""

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from contracts.portfolios import MAX_IMPORT_FIELD_CHARS, MAX_IMPORT_ROWS, Side
from contracts.types import MAX_USD_DECIMALS, UNIX_SECONDS_TEXT, InvalidValue, from_unix_seconds, parse_decimal

from portfolio.domain.errors import DomainError, InvalidTransaction
from portfolio.domain.rules import validate_amount, validate_fee, validate_note, validate_price, validate_time
from portfolio.domain.trades import Trade

GENERIC_COLUMNS = ("side", "amount_btc", "at", "fee_usd", "price_usd", "note")
USD_CURRENCIES = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD"})
"""USD and the USD stablecoins: the only price currencies until several currencies exist."""
BTC = frozenset({"BTC"})
USD_OR_BTC = USD_CURRENCIES | BTC
THOUSANDS_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")
CURRENCY_SUFFIX = re.compile(r"(?<=[0-9.])\s*([A-Za-z]{3,5})$")
"""A currency code after a number ("62000 USD", "0.01BTC"); "NaN" alone is not one."""
USD_PRICE_EPSILON = Decimal(1).scaleb(-MAX_USD_DECIMALS)


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
Record = dict[str, str]
Records = Iterator[tuple[int, Record | RowError]]


# ---------------------------------------------------------------- values


def quantity(text: str, column: str) -> tuple[Decimal, str | None]:
    """An exchange's way of writing a number ("$62,000.00", "0.01 BTC", "-1,234.5") and its currency suffix, if any,
    read under the contract's decimal grammar."""
    raw = text.strip()
    cleaned, unit = raw, None
    suffix = CURRENCY_SUFFIX.search(cleaned)
    if suffix:
        unit = suffix.group(1).upper()
        cleaned = cleaned[:suffix.start()]
    cleaned = re.sub(r"^([+-]?)\$", r"\1", cleaned)
    if "," in cleaned:
        # Thousands separators only: "1,5" (a decimal comma) would otherwise be read as 15.
        if not THOUSANDS_GROUPED.fullmatch(cleaned):
            raise InvalidTransaction(column, f"{column} {raw[:40]!r} is not a number: commas may only separate "
                                             "thousands, as in 62,000.50.")
        cleaned = cleaned.replace(",", "")
    try:
        return parse_decimal(cleaned), unit
    except InvalidValue as error:
        raise InvalidTransaction(column, f"{column}: {error}") from None


def money(text: str, column: str, units: frozenset[str] = USD_CURRENCIES) -> Decimal:
    """A number whose currency suffix, when it has one, must be one of `units`."""
    value, unit = quantity(text, column)
    if unit is not None and unit not in units:
        raise InvalidTransaction(column, f"{column} {text.strip()[:40]!r} is in {unit}, not {'/'.join(sorted(units))}.")
    return value


def optional_money(text: str, column: str, units: frozenset[str] = USD_CURRENCIES) -> Decimal:
    """An empty cell is 0 (fees)."""
    return money(text, column, units) if text.strip() else Decimal(0)


def require_usd(currency: str) -> None:
    """A trade priced in anything but USD (or a USD stablecoin) is a row error that says so."""
    if currency.strip().upper() not in USD_CURRENCIES:
        raise InvalidTransaction("price_usd", f"This trade is priced in {currency.strip()[:20] or 'no currency'}; "
                                              "only USD prices (or USDT, USDC, FDUSD, BUSD) can be imported for now.")


def fee_by_currency(fee: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(fee in USD, fee in BTC) of a fee cell in `currency`; an empty currency with a 0 fee is no fee."""
    code = currency.strip().upper()
    if fee == 0 or code in USD_CURRENCIES:
        return abs(fee), Decimal(0)
    if code in ("BTC", "XBT"):
        return Decimal(0), abs(fee)
    raise InvalidTransaction("fee_usd", f"The fee is paid in {code[:20] or 'no currency'}; only fees in BTC or USD "
                                        "(or USDT, USDC, FDUSD, BUSD) can be imported.")


def price_of(usd: Decimal, btc: Decimal) -> Decimal:
    """The price a trade implies: the USD paid or received per BTC (at most the contract's 28 decimals)."""
    if btc == 0:
        raise InvalidTransaction("amount_btc", "The trade moves no BTC, so it has no price.")
    price = abs(usd) / abs(btc)
    exponent = price.as_tuple().exponent
    assert isinstance(exponent, int)  # a quotient of finite numbers is finite
    if exponent > 0:  # 44000, not 4.4E+4
        return price.quantize(Decimal(1))
    return price.quantize(USD_PRICE_EPSILON) if exponent < -MAX_USD_DECIMALS else price


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


# ---------------------------------------------------------------- rows


def trade(line: int, side: Side, amount_btc: Decimal, at: datetime, now: datetime, *, price_usd: Decimal | None,
          fee_usd: Decimal = Decimal(0), fee_btc: Decimal = Decimal(0), note: str | None = None,
          amount_is_net: bool = False) -> ParsedRow:
    """A checked trade row. The recorded amount is the change in BTC holdings: a fee paid in BTC is BTC a buy did
    not bring in, or a sell also gave up (unless the file's amount already is the change: `amount_is_net`), and it
    is charged as USD at the trade's own price."""
    if fee_btc < 0:
        raise InvalidTransaction("fee_usd", "The BTC fee can't be negative.")
    if fee_btc and price_usd is None:
        raise InvalidTransaction("fee_usd", "A fee paid in BTC needs the trade's price to be counted in USD.")
    held_change = amount_btc if amount_is_net else amount_btc - fee_btc if side is Side.BUY else amount_btc + fee_btc
    fee_in_usd = fee_usd + (fee_btc * price_usd if price_usd is not None and fee_btc else Decimal(0))
    return ParsedRow(line=line, side=side, amount_btc=validate_amount(held_change), at=validate_time(at, now),
                     fee_usd=validate_fee(fee_in_usd), price_usd=validate_price(price_usd),
                     note=validate_note((note or "").strip() or None))


def records(lines: list[str], line_offset: int = 0) -> tuple[list[str], Records]:
    """The header, then (line, record or RowError) per data row: a row too long or unreadable is a row error,
    and a file with more than MAX_IMPORT_ROWS rows is refused as a whole."""
    reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error:
        header = []

    def rows() -> Records:
        count = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:  # e.g. a field over the csv module's own 128 KiB limit
                fields = None
            if fields == [] or fields == [""] * len(fields or [None]):
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


RowReader = Callable[[int, Record, datetime], ParsedRow | RowSkipped]
"""Reads one data row of a format: a trade, or skipped with a reason; raises InvalidTransaction for a bad row."""


def each_row(records: Records, read: RowReader, now: datetime) -> list[ParsedLine]:
    """A format whose every row stands alone: one result per row, a bad row as a row error with its line."""
    results: list[ParsedLine] = []
    for line, record in records:
        if isinstance(record, RowError):
            results.append(record)
            continue
        try:
            results.append(read(line, record, now))
        except InvalidTransaction as error:
            results.append(RowError(line, error.message))
    return results


def cell(record: Record, column: str) -> str:
    return (record.get(column) or "").strip()


def skipped(line: int, kind: str, asset: str) -> RowSkipped:
    """The one wording for a row that is not a BTC buy or sell."""
    return RowSkipped(line, f"{kind[:40] or 'untyped'} of {asset[:20] or 'no asset'} is not a BTC buy or sell")


# ---------------------------------------------------------------- the generic format


def generic_row(line: int, record: Record, now: datetime) -> ParsedRow:
    side_text = cell(record, "side").lower()
    if side_text not in ("buy", "sell"):
        raise InvalidTransaction("side", f"side must be buy or sell, not {side_text[:20]!r}.")
    price = cell(record, "price_usd")
    return trade(line, Side(side_text), money(cell(record, "amount_btc"), "amount_btc", BTC),
                 parse_time(cell(record, "at")), now, fee_usd=optional_money(cell(record, "fee_usd"), "fee_usd"),
                 price_usd=money(price, "price_usd") if price else None, note=record.get("note"))


def export_transactions_csv(trades: Iterable[Trade], notes: dict[str, str | None] | None = None) -> str:
    """The generic format, oldest first; importing it back gives the same trades."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GENERIC_COLUMNS)
    for item in sorted(trades, key=lambda t: t.timeline_key):
        writer.writerow([item.side.value, f"{item.amount_btc:f}", item.at.isoformat().replace("+00:00", "Z"),
                         f"{item.fee_usd:f}", "" if item.price_usd is None else f"{item.price_usd:f}",
                         (notes or {}).get(item.transaction_id) or ""])
    return out.getvalue()
