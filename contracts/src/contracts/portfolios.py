"""Portfolio commands (gateway → portfolio), their results, and the portfolio.updated event."""

from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import names
from contracts.envelope import Message
from contracts.types import Money, Note, UtcDatetime


class CostBasisMethod(StrEnum):
    AVERAGE = "average"
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    PRICED = "priced"
    FAILED = "failed"


class TransactionKind(StrEnum):
    """A trade, or one side of a transfer between two portfolios (side `sell` leaves, side `buy` arrives)."""

    TRADE = "trade"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"


class PriceSource(StrEnum):
    USER = "user"
    MARKET = "market"


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- results


class PortfolioMetrics(View):
    """Every portfolio figure of SPEC; None where the formula has no value (e.g. no holdings)."""

    holdings_btc: Money
    invested_usd: Money
    cost_basis_usd: Money
    average_price_usd: Money | None = None
    latest_price_usd: Money | None = None
    priced_until: UtcDatetime | None = None
    current_value_usd: Money
    realized_pnl_usd: Money
    unrealized_pnl_usd: Money
    net_result_usd: Money
    roi_pct: Money | None = None
    goal_usd: Money | None = None
    goal_progress_pct: Money | None = None
    twr_pct: Money | None = None
    irr_pct: Money | None = None
    max_drawdown_pct: Money | None = None
    transaction_count: int = 0
    pending_count: int = 0
    failed_count: int = 0


class TransactionMetrics(View):
    """Per-transaction figures: a buy has cost/value/net/roi, a sell has proceeds/realized."""

    cost_usd: Money | None = None
    current_value_usd: Money | None = None
    net_result_usd: Money | None = None
    roi_pct: Money | None = None
    proceeds_usd: Money | None = None
    cost_basis_sold_usd: Money | None = None
    realized_pnl_usd: Money | None = None
    moved_cost_usd: Money | None = None
    """A transfer: the cost basis that left the source and arrived in the destination (never realized)."""
    moved_value_usd: Money | None = None
    """A transfer: amount sent × price_at(at), its flow for TWR and IRR."""


class TransferLink(View):
    """The transfer a transaction is one side of, and its other side."""

    transfer_id: str
    counterpart_portfolio_id: str
    counterpart_transaction_id: str


class TransactionView(View):
    transaction_id: str
    portfolio_id: str
    side: Side
    amount_btc: Money
    at: UtcDatetime
    fee_usd: Money
    price_usd: Money | None = None
    price_source: PriceSource | None = None
    price_hour: int | None = None
    status: TransactionStatus
    failure_reason: str | None = None
    failure_detail: str | None = None
    note: str | None = None
    recorded_at: UtcDatetime
    updated_at: UtcDatetime
    metrics: TransactionMetrics | None = None
    kind: TransactionKind = TransactionKind.TRADE
    fee_btc: Money | None = None
    """A transfer's BTC lost on the way (the destination's `amount_btc` is what arrived)."""
    transfer: TransferLink | None = None


class PortfolioView(View):
    portfolio_id: str
    owner_id: str
    name: str
    cost_basis_method: CostBasisMethod
    goal_usd: Money | None = None
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    metrics: PortfolioMetrics


class PortfolioList(View):
    items: list[PortfolioView]
    total: int
    offset: int
    limit: int


class TransactionPage(View):
    """A page of a portfolio's transactions, newest first."""

    items: list[TransactionView]
    total: int
    offset: int
    limit: int


class HistoryPoint(View):
    at: UtcDatetime
    price_usd: Money | None
    holdings_btc: Money
    invested_usd: Money
    value_usd: Money | None


class History(View):
    portfolio_id: str
    interval: Interval
    start: UtcDatetime
    end: UtcDatetime
    points: list[HistoryPoint]


class TaxTerm(StrEnum):
    """Long when the sell's UTC date is later than the lot's UTC buy date plus one calendar year."""

    SHORT = "short"
    LONG = "long"


class TaxReportLine(View):
    """The part of one sell that one lot covered."""

    sell_transaction_id: str
    acquired_at: UtcDatetime
    sold_at: UtcDatetime
    amount_btc: Money
    proceeds_usd: Money
    cost_basis_usd: Money
    gain_usd: Money
    term: TaxTerm


class TaxTotals(View):
    proceeds_usd: Money
    cost_basis_usd: Money
    gain_usd: Money
    short_term_gain_usd: Money
    long_term_gain_usd: Money


class TaxReport(View):
    """Every counted sell of a UTC year, one line per lot it consumed under `method`, and the totals."""

    portfolio_id: str
    year: int
    method: CostBasisMethod
    lines: list[TaxReportLine]
    totals: TaxTotals
    pending_sells: int = 0
    """Sells of the year not counted yet: waiting for their own price or for the prices of earlier buys."""


class ImportRowResult(View):
    """One data row of an import: ok, an error (blocks the file unless skip_invalid), or skipped (not a BTC trade)."""

    line: int
    ok: bool
    skipped: bool = False
    error: str | None = None
    side: Side | None = None
    amount_btc: Money | None = None
    at: UtcDatetime | None = None
    fee_usd: Money | None = None
    price_usd: Money | None = None
    note: str | None = None
    transaction_id: str | None = None


class ImportReport(View):
    format: str
    dry_run: bool
    total_rows: int
    valid_rows: int
    imported: int
    rows: list[ImportRowResult]


class ExportFile(View):
    format: Literal["csv", "json"]
    filename: str
    content_type: str
    content: str


# ---------------------------------------------------------------- commands


class OwnedCommand(Message):
    owner_id: str = Field(min_length=1, max_length=100)


class PortfolioCommand(OwnedCommand):
    portfolio_id: str = Field(min_length=1, max_length=100)


class CreatePortfolio(OwnedCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_CREATE

    name: str = Field(min_length=1, max_length=100)
    cost_basis_method: CostBasisMethod = CostBasisMethod.AVERAGE
    goal_usd: Money | None = None


class RenamePortfolio(PortfolioCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_RENAME

    name: str = Field(min_length=1, max_length=100)


class SetPortfolioGoal(PortfolioCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_SET_GOAL

    goal_usd: Money | None


class SetCostBasisMethod(PortfolioCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_SET_METHOD

    cost_basis_method: CostBasisMethod


class DeletePortfolio(PortfolioCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_DELETE


class GetPortfolio(PortfolioCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_GET


class ListPortfolios(OwnedCommand):
    routing_key: ClassVar[str] = names.PORTFOLIO_LIST

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=500)


class GetHistory(PortfolioCommand):
    """Value history; start/end default to the first transaction and the latest price."""

    routing_key: ClassVar[str] = names.PORTFOLIO_HISTORY

    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    interval: Interval = Interval.DAY


class GetTaxReport(PortfolioCommand):
    """The tax report of a UTC year; `method` defaults to the portfolio's when it is a lot method, else fifo.
    The reply is a TaxReport, or for `csv` an ExportFile in the column order of IRS Form 8949."""

    routing_key: ClassVar[str] = names.PORTFOLIO_TAX_REPORT

    year: int = Field(ge=1970, le=9999)
    method: CostBasisMethod | None = None
    format: Literal["csv", "json"] = "json"


# Commands carry any value of the decimal grammar; its range (contracts.types.check_*) is the domain's typed
# refusal, so that a bad amount is a reply naming the field rather than an undecodable message.
class RecordTransaction(PortfolioCommand):
    routing_key: ClassVar[str] = names.TRANSACTION_RECORD

    side: Side
    amount_btc: Money
    at: UtcDatetime
    fee_usd: Money = Decimal("0")
    price_usd: Money | None = None
    note: Note | None = None


class EditTransaction(PortfolioCommand):
    """Changes only the fields given; `clear_price` drops a typed price so the market prices it."""

    routing_key: ClassVar[str] = names.TRANSACTION_EDIT

    transaction_id: str = Field(min_length=1, max_length=100)
    amount_btc: Money | None = None
    at: UtcDatetime | None = None
    fee_usd: Money | None = None
    price_usd: Money | None = None
    clear_price: bool = False
    note: Note | None = None


class DeleteTransaction(PortfolioCommand):
    routing_key: ClassVar[str] = names.TRANSACTION_DELETE

    transaction_id: str = Field(min_length=1, max_length=100)


class GetTransaction(PortfolioCommand):
    routing_key: ClassVar[str] = names.TRANSACTION_GET

    transaction_id: str = Field(min_length=1, max_length=100)


class ListTransactions(PortfolioCommand):
    routing_key: ClassVar[str] = names.TRANSACTION_LIST

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=1000)


class RecordTransfer(PortfolioCommand):
    """Move BTC from `portfolio_id` to another portfolio of the same owner; not a sale (SPEC "Transfers")."""

    routing_key: ClassVar[str] = names.TRANSFER_RECORD

    to_portfolio_id: str = Field(min_length=1, max_length=100)
    amount_btc: Money
    at: UtcDatetime
    fee_btc: Money = Decimal("0")
    note: Note | None = None


class EditTransfer(PortfolioCommand):
    """Changes only the fields given, on both sides; `portfolio_id` may be either portfolio of the transfer."""

    routing_key: ClassVar[str] = names.TRANSFER_EDIT

    transfer_id: str = Field(min_length=1, max_length=100)
    amount_btc: Money | None = None
    at: UtcDatetime | None = None
    fee_btc: Money | None = None
    note: Note | None = None


class DeleteTransfer(PortfolioCommand):
    """Removes the transfer from both portfolios; `portfolio_id` may be either one."""

    routing_key: ClassVar[str] = names.TRANSFER_DELETE

    transfer_id: str = Field(min_length=1, max_length=100)


MAX_IMPORT_BYTES = 5 * 1024 * 1024
"""An import file's size limit (413 at the gateway); a UTF-8 file of this many bytes has at most as many characters."""
MAX_IMPORT_ROWS = 50_000
"""Data rows per import file (more is one 422 for the file); split a larger history into several files."""
MAX_IMPORT_FIELD_CHARS = 1_000
"""Characters per CSV field (a longer one is a row error); a note is at most 500 of them."""
IMPORT_FORMATS = {
    "generic": "Bitfolio CSV", "coinbase": "Coinbase", "kraken": "Kraken ledgers", "strike": "Strike",
    "river": "River", "swan": "Swan Bitcoin", "bitstamp": "Bitstamp", "binance": "Binance trade history",
}
"""The files an import reads: the name in ImportReport.format, and how the dashboard and the docs call it."""


class ImportTransactions(PortfolioCommand):
    """A CSV file, generic or an exchange's export; nothing is saved from a file with errors unless skip_invalid."""

    routing_key: ClassVar[str] = names.TRANSACTION_IMPORT

    csv_text: str = Field(max_length=MAX_IMPORT_BYTES)
    dry_run: bool = False
    skip_invalid: bool = False


class ExportTransactions(PortfolioCommand):
    routing_key: ClassVar[str] = names.TRANSACTION_EXPORT

    format: Literal["csv", "json"] = "csv"


# ---------------------------------------------------------------- events


class PortfolioUpdated(Message):
    """A portfolio's metrics changed; carries the full metrics so readers need no query. Routed by owner
    (`portfolio.updated.<owner_id>`); a notification: transient, unconfirmed, healed by the next read."""

    routing_key: ClassVar[str] = names.PORTFOLIO_UPDATED
    notification: ClassVar[bool] = True

    owner_id: str
    portfolio_id: str
    version: int
    reason: str
    transaction_id: str | None = None
    deleted: bool = False
    portfolio: PortfolioView | None = None
    metrics: PortfolioMetrics | None = None

    @property
    def publish_key(self) -> str:
        return names.portfolio_updated_key(self.owner_id)


COMMANDS: dict[str, type[OwnedCommand]] = {
    command.routing_key: command
    for command in (
        CreatePortfolio,
        RenamePortfolio,
        SetPortfolioGoal,
        SetCostBasisMethod,
        DeletePortfolio,
        GetPortfolio,
        ListPortfolios,
        GetHistory,
        GetTaxReport,
        RecordTransaction,
        EditTransaction,
        DeleteTransaction,
        GetTransaction,
        ListTransactions,
        ImportTransactions,
        ExportTransactions,
        RecordTransfer,
        EditTransfer,
        DeleteTransfer,
    )
}
"""Routing key → command model, for the portfolio service's dispatcher."""
