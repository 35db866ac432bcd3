"""The pure rules of BTC-USD prices: the hour rule, candle rows, and reading candle CSV files."""

from price.domain.candles import CandleRow, hour_of, is_all_zero, is_finished, known_at
from price.domain.csv_rows import CsvRowError, parse_candle_csv
from price.domain.rule import PriceDecision, decide_price

__all__ = ["CandleRow", "CsvRowError", "PriceDecision", "decide_price", "hour_of", "is_all_zero", "is_finished",
           "known_at", "parse_candle_csv"]
