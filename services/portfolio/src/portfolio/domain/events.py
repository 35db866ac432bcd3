"""The portfolio's event types and the pure fold that rebuilds a portfolio's state from them (replay)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from contracts.portfolios import CostBasisMethod, Side, TransactionKind, TransactionStatus

from portfolio.domain.trades import Trade
from portfolio.domain.transfers import WAITING_FOR_SOURCE, Arrival, MovedLot

PORTFOLIO_CREATED = "PortfolioCreated"
PORTFOLIO_RENAMED = "PortfolioRenamed"
PORTFOLIO_GOAL_SET = "PortfolioGoalSet"
COST_BASIS_METHOD_CHANGED = "CostBasisMethodChanged"
PORTFOLIO_DELETED = "PortfolioDeleted"
TRANSACTION_RECORDED = "TransactionRecorded"
TRANSACTION_PRICED = "TransactionPriced"
TRANSACTION_PRICING_FAILED = "TransactionPricingFailed"
TRANSACTION_EDITED = "TransactionEdited"
TRANSACTION_DELETED = "TransactionDeleted"
TRANSFER_SENT = "TransferSent"
TRANSFER_RECEIVED = "TransferReceived"
TRANSFER_LOTS_SET = "TransferLotsSet"


SIDES = {side.value: side for side in Side}
KINDS = {kind.value: kind for kind in TransactionKind}
"""Enum members by stored value: a lookup, where calling the enum costs a microsecond a row (a replay reads
millions, a fold thousands)."""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class PortfolioCreated:
    kind: ClassVar[str] = PORTFOLIO_CREATED
    portfolio_id: str
    owner_id: str
    name: str
    method: CostBasisMethod
    goal_usd: Decimal | None

    def payload(self) -> dict[str, Any]:
        return {"portfolio_id": self.portfolio_id, "owner_id": self.owner_id, "name": self.name,
                "method": self.method.value, "goal_usd": _text(self.goal_usd)}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "PortfolioCreated":
        return cls(payload["portfolio_id"], payload["owner_id"], payload["name"], CostBasisMethod(payload["method"]),
                   _decimal(payload.get("goal_usd")))


@dataclass(frozen=True, slots=True)
class PortfolioRenamed:
    kind: ClassVar[str] = PORTFOLIO_RENAMED
    name: str

    def payload(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "PortfolioRenamed":
        return cls(payload["name"])


@dataclass(frozen=True, slots=True)
class PortfolioGoalSet:
    kind: ClassVar[str] = PORTFOLIO_GOAL_SET
    goal_usd: Decimal | None

    def payload(self) -> dict[str, Any]:
        return {"goal_usd": _text(self.goal_usd)}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "PortfolioGoalSet":
        return cls(_decimal(payload.get("goal_usd")))


@dataclass(frozen=True, slots=True)
class CostBasisMethodChanged:
    kind: ClassVar[str] = COST_BASIS_METHOD_CHANGED
    method: CostBasisMethod

    def payload(self) -> dict[str, Any]:
        return {"method": self.method.value}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "CostBasisMethodChanged":
        return cls(CostBasisMethod(payload["method"]))


@dataclass(frozen=True, slots=True)
class PortfolioDeleted:
    kind: ClassVar[str] = PORTFOLIO_DELETED

    def payload(self) -> dict[str, Any]:
        return {}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "PortfolioDeleted":
        return cls()


@dataclass(slots=True)  # not frozen, like TransactionPriced: a replay reads one per trade (see Trade)
class TransactionRecorded:
    kind: ClassVar[str] = TRANSACTION_RECORDED
    transaction_id: str
    sequence: int
    side: Side
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal
    price_usd: Decimal | None
    """Typed by the user; None when the market prices it (`price_request_id` names the request)."""
    note: str | None
    price_request_id: str | None

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "sequence": self.sequence, "side": self.side.value,
                "amount_btc": str(self.amount_btc), "at": self.at.isoformat(), "fee_usd": str(self.fee_usd),
                "price_usd": _text(self.price_usd), "note": self.note, "price_request_id": self.price_request_id}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransactionRecorded":
        return cls(payload["transaction_id"], int(payload["sequence"]), SIDES[payload["side"]],
                   Decimal(payload["amount_btc"]), datetime.fromisoformat(payload["at"]), Decimal(payload["fee_usd"]),
                   _decimal(payload.get("price_usd")), payload.get("note"), payload.get("price_request_id"))


@dataclass(slots=True)
class TransactionPriced:
    kind: ClassVar[str] = TRANSACTION_PRICED
    transaction_id: str
    price_usd: Decimal
    hour: int | None
    source: str | None

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "price_usd": str(self.price_usd), "hour": self.hour,
                "source": self.source}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransactionPriced":
        return cls(payload["transaction_id"], Decimal(payload["price_usd"]), payload.get("hour"),
                   payload.get("source"))


@dataclass(frozen=True, slots=True)
class TransactionPricingFailed:
    kind: ClassVar[str] = TRANSACTION_PRICING_FAILED
    transaction_id: str
    reason: str
    detail: str | None

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "reason": self.reason, "detail": self.detail}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransactionPricingFailed":
        return cls(payload["transaction_id"], payload["reason"], payload.get("detail"))


@dataclass(frozen=True, slots=True)
class TransactionEdited:
    """The fields given change (None: unchanged; `note_changed` because a note may be cleared to None). A typed
    price prices it; otherwise `price_request_id` names a new market price request, if any."""

    kind: ClassVar[str] = TRANSACTION_EDITED
    transaction_id: str
    amount_btc: Decimal | None = None
    at: datetime | None = None
    fee_usd: Decimal | None = None
    price_usd: Decimal | None = None
    note: str | None = None
    note_changed: bool = False
    price_request_id: str | None = None
    fee_btc: Decimal | None = None
    """A transfer's fee (BTC lost on the way)."""

    def payload(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.amount_btc is not None:
            changes["amount_btc"] = str(self.amount_btc)
        if self.fee_btc is not None:
            changes["fee_btc"] = str(self.fee_btc)
        if self.at is not None:
            changes["at"] = self.at.isoformat()
        if self.fee_usd is not None:
            changes["fee_usd"] = str(self.fee_usd)
        if self.price_usd is not None:
            changes["price_usd"] = str(self.price_usd)
        if self.note_changed:
            changes["note"] = self.note
        return {"transaction_id": self.transaction_id, "changes": changes, "price_request_id": self.price_request_id}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransactionEdited":
        changes = payload["changes"]
        return cls(payload["transaction_id"], _decimal(changes.get("amount_btc")),
                   datetime.fromisoformat(changes["at"]) if "at" in changes else None,
                   _decimal(changes.get("fee_usd")), _decimal(changes.get("price_usd")), changes.get("note"),
                   "note" in changes, payload.get("price_request_id"), _decimal(changes.get("fee_btc")))


@dataclass(frozen=True, slots=True)
class TransactionDeleted:
    kind: ClassVar[str] = TRANSACTION_DELETED
    transaction_id: str

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransactionDeleted":
        return cls(payload["transaction_id"])


@dataclass(frozen=True, slots=True)
class TransferSide:
    """One portfolio's side of a transfer: `TransferSent` in the source, `TransferReceived` in the destination.
    `amount_btc` is this portfolio's change in holdings (sent, or sent − fee arrived)."""

    transaction_id: str
    transfer_id: str
    sequence: int
    amount_btc: Decimal
    fee_btc: Decimal
    at: datetime
    note: str | None
    counterpart_portfolio_id: str
    counterpart_transaction_id: str
    price_request_id: str | None = None
    """The source asks for price_at(at); the destination receives the price with the lots."""

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "transfer_id": self.transfer_id, "sequence": self.sequence,
                "amount_btc": str(self.amount_btc), "fee_btc": str(self.fee_btc), "at": self.at.isoformat(),
                "note": self.note, "counterpart_portfolio_id": self.counterpart_portfolio_id,
                "counterpart_transaction_id": self.counterpart_transaction_id,
                "price_request_id": self.price_request_id}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> Any:
        return cls(payload["transaction_id"], payload["transfer_id"], int(payload["sequence"]),
                   Decimal(payload["amount_btc"]), Decimal(payload["fee_btc"]), datetime.fromisoformat(payload["at"]),
                   payload.get("note"), payload["counterpart_portfolio_id"], payload["counterpart_transaction_id"],
                   payload.get("price_request_id"))


@dataclass(frozen=True, slots=True)
class TransferSent(TransferSide):
    kind: ClassVar[str] = TRANSFER_SENT


@dataclass(frozen=True, slots=True)
class TransferReceived(TransferSide):
    kind: ClassVar[str] = TRANSFER_RECEIVED


@dataclass(frozen=True, slots=True)
class TransferLotsSet:
    """The destination's side as the source counts it now: priced with the arriving lots, or pending/failed."""

    kind: ClassVar[str] = TRANSFER_LOTS_SET
    transaction_id: str
    arrival: Arrival

    def payload(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, **self.arrival.payload()}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "TransferLotsSet":
        return cls(payload["transaction_id"], Arrival.read(payload))


DomainEvent = (PortfolioCreated | PortfolioRenamed | PortfolioGoalSet | CostBasisMethodChanged | PortfolioDeleted
               | TransactionRecorded | TransactionPriced | TransactionPricingFailed | TransactionEdited
               | TransactionDeleted | TransferSent | TransferReceived | TransferLotsSet)
EVENT_TYPES: dict[str, Any] = {cls.kind: cls for cls in (
    PortfolioCreated, PortfolioRenamed, PortfolioGoalSet, CostBasisMethodChanged, PortfolioDeleted,
    TransactionRecorded, TransactionPriced, TransactionPricingFailed, TransactionEdited, TransactionDeleted,
    TransferSent, TransferReceived, TransferLotsSet)}
"""Each event's stored name → its class; `read` turns a stored payload back into the event (one definition)."""


def read_event(kind: str, payload: dict[str, Any]) -> DomainEvent:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event type {kind}")
    return cls.read(payload)  # type: ignore[no-any-return]


def stream_of(portfolio_id: str) -> str:
    return f"portfolio-{portfolio_id}"


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(slots=True)
class TransactionState:
    transaction_id: str
    sequence: int
    side: Side
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal
    price_usd: Decimal | None
    price_source: str | None
    price_hour: int | None
    status: TransactionStatus
    failure_reason: str | None
    failure_detail: str | None
    note: str | None
    price_request_id: str | None
    recorded_at: datetime
    updated_at: datetime
    hold_reason: str | None = None
    """Set by the ledger, not by an event: why a priced sell is left out of the figures (see sell_holds)."""
    hold_detail: str | None = None
    kind: TransactionKind = TransactionKind.TRADE
    fee_btc: Decimal | None = None
    transfer_id: str | None = None
    counterpart_portfolio_id: str | None = None
    counterpart_transaction_id: str | None = None
    lots: tuple[MovedLot, ...] = ()
    """A transfer-in's lots as they arrived (set by TransferLotsSet)."""

    def trade(self) -> Trade:
        return Trade(self.transaction_id, self.side, self.amount_btc, self.at, self.fee_usd,
                     self.price_usd if self.status == TransactionStatus.PRICED else None, self.sequence, self.kind,
                     self.fee_btc or Decimal(0), self.lots)


@dataclass(slots=True)
class PortfolioState:
    portfolio_id: str
    owner_id: str
    name: str
    method: CostBasisMethod
    goal_usd: Decimal | None
    created_at: datetime
    updated_at: datetime
    version: int = 0
    deleted: bool = False
    next_sequence: int = 1
    transactions: dict[str, TransactionState] = field(default_factory=dict)
    """Only the transactions a command touches are loaded; a replay loads them all."""
    counts: dict[str, int] = field(default_factory=dict)
    """Transactions by the status their events give, of the whole portfolio (a held sell counts as priced)."""
    repair_from: datetime | None = None
    """Not an event: the ledger missed midnight prices from this time on and is recomputed once they are known."""

    def count(self, status: TransactionStatus, change: int) -> None:
        self.counts[status] = self.counts.get(status, 0) + change  # a StrEnum member is its value as a key


def recorded_transaction(event: TransactionRecorded, recorded_at: datetime) -> TransactionState:
    typed = event.price_usd
    # positional, in field order: a replay makes one per trade
    return TransactionState(
        event.transaction_id, event.sequence, event.side, event.amount_btc, event.at, event.fee_usd, typed,
        "user" if typed else None, None, TransactionStatus.PRICED if typed else TransactionStatus.PENDING, None, None,
        event.note, event.price_request_id, recorded_at, recorded_at)


def transfer_side(event: TransferSent | TransferReceived, recorded_at: datetime) -> TransactionState:
    """A transfer's side as recorded: pending until the source's price (and, in the destination, its lots)."""
    sent = isinstance(event, TransferSent)
    return TransactionState(
        transaction_id=event.transaction_id, sequence=event.sequence, side=Side.SELL if sent else Side.BUY,
        amount_btc=event.amount_btc, at=event.at, fee_usd=Decimal(0), price_usd=None, price_source=None,
        price_hour=None, status=TransactionStatus.PENDING, failure_reason=None,
        failure_detail=None if sent else WAITING_FOR_SOURCE, note=event.note,
        price_request_id=event.price_request_id, recorded_at=recorded_at, updated_at=recorded_at,
        kind=TransactionKind.TRANSFER_OUT if sent else TransactionKind.TRANSFER_IN, fee_btc=event.fee_btc,
        transfer_id=event.transfer_id, counterpart_portfolio_id=event.counterpart_portfolio_id,
        counterpart_transaction_id=event.counterpart_transaction_id)


def apply_arrival(tx: TransactionState, arrival: Arrival, at: datetime) -> None:
    priced = arrival.status == TransactionStatus.PRICED
    tx.status, tx.price_usd, tx.price_hour, tx.lots = arrival.status, arrival.price_usd, arrival.price_hour, arrival.lots
    tx.price_source = "market" if priced else None
    tx.failure_reason, tx.failure_detail = arrival.reason, arrival.detail
    tx.updated_at = at


def apply_edit(tx: TransactionState, event: TransactionEdited, at: datetime) -> None:
    """The changed fields, and either a typed price or a new market price request."""
    if event.amount_btc is not None:
        tx.amount_btc = event.amount_btc
    if event.fee_btc is not None:
        tx.fee_btc = event.fee_btc
    if event.at is not None:
        tx.at = event.at
    if event.fee_usd is not None:
        tx.fee_usd = event.fee_usd
    if event.note_changed:
        tx.note = event.note
    if event.price_usd is not None:
        tx.price_usd, tx.price_source, tx.price_hour = event.price_usd, "user", None
        tx.status, tx.failure_reason, tx.failure_detail, tx.price_request_id = TransactionStatus.PRICED, None, None, None
    elif event.price_request_id:
        tx.price_usd, tx.price_source, tx.price_hour = None, None, None
        tx.status, tx.failure_reason, tx.failure_detail = TransactionStatus.PENDING, None, None
        tx.price_request_id = event.price_request_id
    tx.updated_at = at


def add_transaction(state: PortfolioState, tx: TransactionState) -> None:
    state.transactions[tx.transaction_id] = tx
    state.next_sequence = max(state.next_sequence, tx.sequence + 1)
    state.count(tx.status, 1)


def apply_event(state: PortfolioState | None, event: DomainEvent, at: datetime) -> PortfolioState:
    """Fold one event into a portfolio's state; the replay builds every projection from this."""
    if isinstance(event, PortfolioCreated):
        return PortfolioState(event.portfolio_id, event.owner_id, event.name, event.method, event.goal_usd, at, at,
                              version=1)
    if state is None:
        raise ValueError(f"{event.kind} before PortfolioCreated")
    state.version += 1
    state.updated_at = at
    match event:  # the most frequent events first
        case TransactionRecorded():
            add_transaction(state, recorded_transaction(event, at))
        case TransactionPriced():
            tx = state.transactions[event.transaction_id]
            state.count(tx.status, -1)
            tx.price_usd, tx.price_hour, tx.price_source = event.price_usd, event.hour, "market"
            tx.status, tx.failure_reason, tx.failure_detail, tx.updated_at = TransactionStatus.PRICED, None, None, at
            state.count(tx.status, 1)
        case PortfolioRenamed():
            state.name = event.name
        case PortfolioGoalSet():
            state.goal_usd = event.goal_usd
        case CostBasisMethodChanged():
            state.method = event.method
        case PortfolioDeleted():
            state.deleted = True
        case TransactionPricingFailed():
            tx = state.transactions[event.transaction_id]
            state.count(tx.status, -1)
            tx.status, tx.failure_reason, tx.failure_detail = TransactionStatus.FAILED, event.reason, event.detail
            tx.updated_at = at
            state.count(tx.status, 1)
        case TransactionEdited():
            tx = state.transactions[event.transaction_id]
            state.count(tx.status, -1)
            apply_edit(tx, event, at)
            state.count(tx.status, 1)
        case TransactionDeleted():
            gone = state.transactions.pop(event.transaction_id, None)
            if gone is not None:
                state.count(gone.status, -1)
        case TransferSent() | TransferReceived():
            add_transaction(state, transfer_side(event, at))
        case TransferLotsSet():
            tx = state.transactions[event.transaction_id]
            state.count(tx.status, -1)
            apply_arrival(tx, event.arrival, at)
            state.count(tx.status, 1)
    return state
