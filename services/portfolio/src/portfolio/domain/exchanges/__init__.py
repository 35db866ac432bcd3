"""The exchange exports an import reads: each recognised by the columns of its header, read by its own module."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from portfolio.domain.csv_formats import ParsedLine, Records
from portfolio.domain.exchanges import binance, bitstamp, coinbase, kraken, river, strike, swan

Reader = Callable[[list[str], Records, datetime], list[ParsedLine]]


@dataclass(frozen=True, slots=True)
class ExchangeFormat:
    name: str
    """As in ImportReport.format and contracts.portfolios.IMPORT_FORMATS."""
    columns: frozenset[str]
    """The header columns that name the format (its header may have more)."""
    read: Reader


EXCHANGES = (
    ExchangeFormat("coinbase", coinbase.COLUMNS, coinbase.read),
    ExchangeFormat("kraken", kraken.COLUMNS, kraken.read),
    ExchangeFormat("strike", strike.COLUMNS, strike.read),
    ExchangeFormat("river", river.COLUMNS, river.read),
    ExchangeFormat("swan", swan.COLUMNS, swan.read),
    ExchangeFormat("bitstamp", bitstamp.COLUMNS, bitstamp.read),
    ExchangeFormat("binance", binance.COLUMNS, binance.read),
)


def exchange_of(header: list[str]) -> ExchangeFormat | None:
    names = {name.strip() for name in header}
    return next((exchange for exchange in EXCHANGES if exchange.columns <= names), None)
