"""The running state of one portfolio over its priced trades, advanced one trade at a time."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts.portfolios import CostBasisMethod

from portfolio.domain.cost_basis import CostBasisBook, LotPiece
from portfolio.domain.returns import ReturnIndex
from portfolio.domain.trades import Trade
from portfolio.domain.transfers import MovedLot

ZERO = Decimal(0)
MidnightOpens = Callable[[datetime, datetime], Sequence[tuple[datetime, Decimal]]]
"""(after, until) → price at every 00:00 UTC in (after, until]."""


@dataclass(slots=True)
class TradeOutcome:
    """A trade's figures as the ledger found them (not frozen: a replay makes one per trade, and a frozen dataclass sets
    each field through object.__setattr__, several times slower)."""

    transaction_id: str
    cost_usd: Decimal | None = None
    proceeds_usd: Decimal | None = None
    cost_basis_sold_usd: Decimal | None = None
    realized_pnl_usd: Decimal | None = None
    moved_cost_usd: Decimal | None = None
    """A transfer: the cost basis that left (or arrived); never realized."""
    moved_value_usd: Decimal | None = None
    """A transfer: amount sent × its price, the flow of TWR and IRR."""
    moved_lots: tuple[MovedLot, ...] = ()
    """A transfer-out: the lots that left, as the source's method took them (before the fee)."""
    moved_in: bool = False

    @property
    def cash_flow(self) -> Decimal | None:
        """The IRR cash flow: −cost of a buy, +proceeds of a sell, ∓ the value moved by a transfer in or out."""
        if self.cost_usd is not None:
            return -self.cost_usd
        if self.proceeds_usd is not None:
            return self.proceeds_usd
        if self.moved_value_usd is not None:
            return -self.moved_value_usd if self.moved_in else self.moved_value_usd
        return None


@dataclass(frozen=True, slots=True)
class UncoveredSell:
    """A priced sell that the priced holdings at its time do not cover: it is left out of every figure."""

    transaction_id: str
    at: datetime
    sequence: int
    amount_btc: Decimal
    held_btc: Decimal
    """The priced holdings just before it."""

    @property
    def timeline_key(self) -> tuple[datetime, int]:
        return (self.at, self.sequence)

    def to_json(self) -> list[Any]:
        return [self.transaction_id, self.at.isoformat(), self.sequence, str(self.amount_btc), str(self.held_btc)]

    @classmethod
    def from_json(cls, data: list[Any]) -> "UncoveredSell":
        return cls(data[0], datetime.fromisoformat(data[1]), int(data[2]), Decimal(data[3]), Decimal(data[4]))


@dataclass(slots=True)
class Ledger:
    method: CostBasisMethod
    book: CostBasisBook
    invested_usd: Decimal = ZERO
    realized_pnl_usd: Decimal = ZERO
    proceeds_usd: Decimal = ZERO
    returns: ReturnIndex = field(default_factory=ReturnIndex)
    first_at: datetime | None = None
    last_key: tuple[datetime, int] | None = None
    trade_count: int = 0
    uncovered: list[UncoveredSell] = field(default_factory=list)
    """Sells left out so far, in timeline order; each is counted again once holdings cover it."""

    @classmethod
    def empty(cls, method: CostBasisMethod) -> "Ledger":
        return cls(method, CostBasisBook(method))

    @property
    def holdings_btc(self) -> Decimal:
        return self.book.holdings_btc

    @property
    def cost_basis_usd(self) -> Decimal:
        return self.book.cost_basis_usd

    @property
    def needs_refold(self) -> bool:
        """Read from a checkpoint written before lots carried their buy time: only a refold from the trades
        gives its lots their buy times back."""
        return self.book.buy_times_missing

    @property
    def last_at(self) -> datetime | None:
        return None if self.last_key is None else self.last_key[0]

    @property
    def last_seen_key(self) -> tuple[datetime, int] | None:
        """The latest trade folded in, counted or left out: a trade after it extends the ledger."""
        if self.uncovered and (self.last_key is None or self.uncovered[-1].timeline_key > self.last_key):
            return self.uncovered[-1].timeline_key
        return self.last_key

    def covers(self, trade: Trade) -> bool:
        """Whether the priced holdings cover the trade (a buy always is)."""
        return trade.is_buy or self.book.covers(trade.amount_btc)

    def leave_out(self, trade: Trade) -> TradeOutcome:
        """Fold in a sell that the holdings do not cover: it has no figures."""
        self.uncovered.append(UncoveredSell(trade.transaction_id, trade.at, trade.sequence, trade.amount_btc,
                                            self.book.holdings_btc))
        return TradeOutcome(trade.transaction_id)

    def uncovered_until(self, key: tuple[datetime, int] | None) -> None:
        """Forget the left-out sells after `key`: a replay from here judges them again."""
        self.uncovered = [] if key is None else [u for u in self.uncovered if u.timeline_key < key]

    def apply(self, trade: Trade, midnight_opens: Sequence[tuple[datetime, Decimal]] = ()) -> TradeOutcome:
        """Advance over one priced trade that is not earlier than the last one applied."""
        if trade.price_usd is None:
            raise ValueError(f"trade {trade.transaction_id} is not priced")
        if self.last_key is not None and trade.timeline_key < self.last_key:
            raise ValueError(f"trade {trade.transaction_id} is earlier than the last applied trade")
        if trade.is_transfer:
            outcome, flow = self._move(trade, trade.price_usd)
        elif trade.is_buy:
            cost = trade.cost_usd
            self.book.add(trade.sequence, trade.amount_btc, cost, trade.at)
            self.invested_usd += cost
            outcome = TradeOutcome(trade.transaction_id, cost_usd=cost)
            flow = cost
        else:
            proceeds = trade.proceeds_usd
            sold_cost = self.book.remove(trade.amount_btc)
            realized = proceeds - sold_cost
            self.realized_pnl_usd += realized
            self.proceeds_usd += proceeds
            outcome = TradeOutcome(trade.transaction_id, proceeds_usd=proceeds, cost_basis_sold_usd=sold_cost,
                                   realized_pnl_usd=realized)
            flow = -proceeds
        self.returns.apply(trade.price_usd, self.book.holdings_btc, flow, midnight_opens)
        self.first_at = self.first_at or trade.at
        self.last_key = trade.timeline_key
        self.trade_count += 1
        return outcome

    def _move(self, trade: Trade, price: Decimal) -> tuple[TradeOutcome, Decimal]:
        """A transfer: lots leave by the method, or arrive as they are; the cost basis and the invested amount
        move with them, nothing is realized. Its flow is the value sent (the fee is the destination's loss)."""
        value = (trade.amount_btc + trade.fee_btc) * price if trade.is_buy else trade.amount_btc * price
        if trade.is_buy:
            for lot in trade.lots:
                self.book.add(trade.sequence, lot.amount_btc, lot.cost_usd, lot.acquired_at)
            moved = sum((lot.cost_usd for lot in trade.lots), ZERO)
            self.invested_usd += moved
            return TradeOutcome(trade.transaction_id, moved_cost_usd=moved, moved_value_usd=value, moved_in=True), value
        pieces: list[LotPiece] = []
        moved = self.book.remove(trade.amount_btc, pieces)
        self.invested_usd -= moved
        # average cost keeps no lots: its share of the average cost leaves as one lot dated at the transfer
        lots = (tuple(MovedLot(p.acquired_at, p.amount_btc, p.cost_usd) for p in pieces) if pieces
                else (MovedLot(trade.at, trade.amount_btc, moved),))
        return TradeOutcome(trade.transaction_id, moved_cost_usd=moved, moved_value_usd=value, moved_lots=lots), -value

    def copy(self) -> "Ledger":
        """An independent copy (the book's lots change as sells take from them)."""
        return replace(self, book=self.book.copy(), returns=replace(self.returns), uncovered=list(self.uncovered))

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method.value, "book": self.book.to_json(), "invested_usd": str(self.invested_usd),
            "realized_pnl_usd": str(self.realized_pnl_usd), "proceeds_usd": str(self.proceeds_usd),
            "returns": self.returns.to_json(), "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_key": [self.last_key[0].isoformat(), self.last_key[1]] if self.last_key else None,
            "trade_count": self.trade_count, "uncovered": [u.to_json() for u in self.uncovered],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Ledger":
        last = data["last_key"]
        return cls(
            CostBasisMethod(data["method"]), CostBasisBook.from_json(data["book"]), Decimal(data["invested_usd"]),
            Decimal(data["realized_pnl_usd"]), Decimal(data["proceeds_usd"]), ReturnIndex.from_json(data["returns"]),
            datetime.fromisoformat(data["first_at"]) if data["first_at"] else None,
            (datetime.fromisoformat(last[0]), int(last[1])) if last else None, int(data["trade_count"]),
            [UncoveredSell.from_json(u) for u in data.get("uncovered", ())],
        )


def first_midnight_after(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def midnights_between(after: datetime, until: datetime) -> list[datetime]:
    """Every 00:00 UTC strictly after `after` and at or before `until`."""
    day = first_midnight_after(after)
    days = []
    while day <= until:
        days.append(day)
        day += timedelta(days=1)
    return days


CHECKPOINT_EVERY = 256
"""A copy of the ledger is kept after every this many priced trades."""


def count_midnights(after: datetime, until: datetime) -> int:
    """How many 00:00 UTC fall in (after, until]: len(midnights_between(after, until)) without listing them."""
    first = first_midnight_after(after)
    return 0 if until < first else (until - first) // timedelta(days=1) + 1


def replay_ledger(method: CostBasisMethod, trades: Iterable[Trade], midnight_opens: MidnightOpens | None = None, *,
                  start: Ledger | None = None, checkpoints: list[Ledger] | None = None,
                  checkpoint_every: int = CHECKPOINT_EVERY) -> tuple[Ledger, list[TradeOutcome]]:
    """Apply priced trades in timeline order, to an empty ledger or from `start` (a checkpoint) onward.

    From a checkpoint, only the trades after its last one are given: what came before it is unchanged, so the
    result is the full replay's. Copies of the ledger at every `checkpoint_every`-th trade go to `checkpoints`.
    A sell larger than the priced holdings at its time is left out (`Ledger.uncovered`, an empty outcome) until
    buys before it are priced: price answers arrive in any order, and a sell cannot be costed before its lots."""
    ledger = start if start is not None else Ledger.empty(method)
    ledger.uncovered_until(ledger.last_key)
    outcomes = []
    # midnights are looked up only for a trade on a later day than the last one (most trades share a day)
    next_midnight = first_midnight_after(ledger.last_at) if ledger.last_at else None
    for trade in sorted((t for t in trades if t.price_usd is not None), key=lambda t: t.timeline_key):
        if not ledger.covers(trade):
            outcomes.append(ledger.leave_out(trade))
            continue
        later_day = next_midnight is None or trade.at >= next_midnight
        opens = midnight_opens(ledger.last_at, trade.at) if midnight_opens and ledger.last_at and later_day else ()
        outcomes.append(ledger.apply(trade, opens))
        if later_day:
            next_midnight = first_midnight_after(trade.at)
        if checkpoints is not None and ledger.trade_count % checkpoint_every == 0:
            checkpoints.append(ledger.copy())
    return ledger, outcomes
