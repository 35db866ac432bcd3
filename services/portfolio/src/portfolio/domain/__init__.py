"""The pure portfolio domain: trades, rules, cost basis, the incremental ledger, metrics, history and CSV."""

from portfolio.domain.csv_formats import ParsedRow, RowError, RowSkipped, export_transactions_csv
from portfolio.domain.errors import Conflict, DomainError, InsufficientHoldings, InvalidTransaction, NotFound
from portfolio.domain.figures import (
    PortfolioFigures,
    TransactionFigures,
    cash_flows,
    irr_at,
    portfolio_figures,
    transaction_figures,
)
from portfolio.domain.history import HistoryPointFigures, value_history
from portfolio.domain.imports import parse_transactions_csv
from portfolio.domain.ledger import (
    CHECKPOINT_EVERY,
    Ledger,
    TradeOutcome,
    count_midnights,
    midnights_between,
    replay_ledger,
)
from portfolio.domain.returns import irr_pct
from portfolio.domain.rules import (
    check_holdings,
    check_new_sell,
    refuse_oversized_sells,
    validate_amount,
    validate_fee,
    validate_price,
    validate_time,
)
from portfolio.domain.tax_report import TaxLine, TaxYear, report_method, tax_report_csv, tax_year
from portfolio.domain.trades import Trade

__all__ = [
    "CHECKPOINT_EVERY",
    "Conflict", "DomainError", "HistoryPointFigures", "InsufficientHoldings", "InvalidTransaction", "Ledger",
    "NotFound", "ParsedRow", "PortfolioFigures", "RowError", "RowSkipped", "TaxLine", "TaxYear", "Trade", "TradeOutcome",
    "TransactionFigures", "cash_flows", "check_holdings", "check_new_sell", "count_midnights", "export_transactions_csv", "irr_at", "irr_pct", "midnights_between",
    "parse_transactions_csv", "portfolio_figures", "refuse_oversized_sells", "replay_ledger", "report_method", "tax_report_csv", "tax_year", "transaction_figures", "validate_amount",
    "validate_fee", "validate_price", "validate_time", "value_history",
]
