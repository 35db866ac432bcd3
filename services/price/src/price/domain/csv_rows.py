"""Reading candle CSV files: the shared Coinbase export columns or the provider's own field names."""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from price.domain.candles import HOUR, CandleRow

COLUMN_SETS = {
    "coinbase": {"hour": "unix", "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"},
    "cryptocompare": {"hour": "time", "open": "open", "high": "high", "low": "low", "close": "close",
                      "volume": "volumefrom"},
}


@dataclass(frozen=True, slots=True)
class CsvRowError:
    line: int
    message: str


def _decimal(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{column} {text!r} must be a finite number ≥ 0")
    return value


def _row(record: dict[str, str], columns: dict[str, str]) -> CandleRow:
    raw_hour = (record.get(columns["hour"]) or "").strip()
    if not raw_hour.lstrip("-").isdigit():
        raise ValueError(f"{columns['hour']} {raw_hour!r} is not unix seconds")
    hour = int(raw_hour)
    if hour % HOUR:
        raise ValueError(f"{columns['hour']} {hour} is not the start of an hour (divisible by 3600)")
    values = {name: _decimal(record.get(column) or "", column) for name, column in columns.items() if name != "hour"}
    row = CandleRow(hour=hour, open=values["open"], high=values["high"], low=values["low"], close=values["close"],
                    volume=values["volume"])
    if row.low > row.high:
        raise ValueError(f"low {row.low} is above high {row.high}")
    return row


def parse_candle_csv(lines: Iterable[str]) -> Iterator[CandleRow | CsvRowError]:
    """Yield a CandleRow per good row and a CsvRowError (with its 1-based file line) per bad one."""
    reader = csv.DictReader(lines)
    header = set(reader.fieldnames or ())
    columns = next((c for c in COLUMN_SETS.values() if set(c.values()) <= header), None)
    if columns is None:
        expected = " or ".join(",".join(c.values()) for c in COLUMN_SETS.values())
        yield CsvRowError(1, f"the header must have the columns {expected}")
        return
    for record in reader:
        try:
            yield _row(record, columns)
        except ValueError as error:
            yield CsvRowError(reader.line_num, str(error))
