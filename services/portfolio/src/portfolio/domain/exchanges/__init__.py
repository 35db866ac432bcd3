"""The exchange exports an import reads: each recognised by the columns of its header, read by its own module."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from portfolio.domain.csv_formats import ParsedLine, Records, RowReader, each_row
from portfolio.domain.exchanges import binance, bitstamp, coinbase, kraken, river, strike, swan

Reader = Callable[[list[str], Records, datetime], list[ParsedLine]]


@dataclass(frozen=True, slots=True)
class ExchangeFormat:
    name: str
    """As in ImportReport.format and contracts.portfolios.IMPORT_FORMATS."""
    columns: frozenset[str]
    """The header columns that name the format (its header may have more)."""
    read: Reader


def row_by_row(read_row: RowReader) -> Reader:
    """The reader of a format whose every row stands alone."""
    return lambda header, records, now: each_row(records, read_row, now)


EXCHANGES = (
    ExchangeFormat("coinbase", coinbase.COLUMNS, coinbase.read),
    ExchangeFormat("kraken", kraken.COLUMNS, kraken.read),
    ExchangeFormat("strike", strike.COLUMNS, row_by_row(strike.row)),
    ExchangeFormat("river", river.COLUMNS, row_by_row(river.row)),
    ExchangeFormat("swan", swan.COLUMNS, row_by_row(swan.row)),
    ExchangeFormat("bitstamp", bitstamp.COLUMNS, row_by_row(bitstamp.row)),
    ExchangeFormat("binance", binance.COLUMNS, row_by_row(binance.row)),
)


def exchange_of(header: list[str]) -> ExchangeFormat | None:
    names = {name.strip() for name in header}
    return next((exchange for exchange in EXCHANGES if exchange.columns <= names), None)
