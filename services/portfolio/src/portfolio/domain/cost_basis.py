"""Cost basis of the BTC still held: running average, or lots taken first-in, last-in or highest-cost first."""

import bisect
import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from contracts.portfolios import CostBasisMethod

ZERO = Decimal(0)
UNKNOWN_BUY_TIME = datetime.min.replace(tzinfo=UTC)
"""The buy time of a lot read from a checkpoint written before lots carried one: the ledger must be refolded."""


@dataclass(slots=True)
class Lot:
    """A buy's BTC still held and the share of its cost (fee included) that goes with it."""

    sequence: int
    amount_btc: Decimal
    cost_usd: Decimal
    acquired_at: datetime
    """The buy's time (a lot keeps it when it moves, so the tax term carries over)."""

    @property
    def cost_per_btc(self) -> Decimal:
        return self.cost_usd / self.amount_btc

    def __lt__(self, other: "Lot") -> bool:
        """Heap order for hifo: highest cost per BTC first, then the earlier buy."""
        mine, theirs = self.cost_per_btc, other.cost_per_btc
        return mine > theirs or (mine == theirs and self.sequence < other.sequence)


@dataclass(frozen=True, slots=True)
class LotPiece:
    """The part of one lot that a sell consumed."""

    sequence: int
    acquired_at: datetime
    amount_btc: Decimal
    cost_usd: Decimal


@dataclass(slots=True)
class CostBasisBook:
    """Holdings and their cost. `remove` returns the cost of the BTC sold under the method."""

    method: CostBasisMethod
    holdings_btc: Decimal = ZERO
    cost_basis_usd: Decimal = ZERO
    lots: list[Lot] = field(default_factory=list)
    """Open lots: in buy order for fifo/lifo; a heap keyed by -(cost per BTC) for hifo."""
    _first: int = 0
    """Index of the first open lot for fifo (lots before it are used up), so removal is amortized O(1)."""
    buy_times_missing: bool = False
    """Read from a checkpoint whose lots had no buy time: refold the ledger from its trades before trusting it."""

    def add(self, sequence: int, amount_btc: Decimal, cost_usd: Decimal, acquired_at: datetime) -> None:
        self.holdings_btc += amount_btc
        self.cost_basis_usd += cost_usd
        if self.method is CostBasisMethod.AVERAGE:
            return
        lot = Lot(sequence, amount_btc, cost_usd, acquired_at)
        if self.method is CostBasisMethod.HIFO:
            heapq.heappush(self.lots, lot)
        elif self.lots and acquired_at < self.lots[-1].acquired_at:
            # a lot moved in from another portfolio keeps its buy time: fifo/lifo take it in buy-time order
            bisect.insort(self.lots, lot, lo=self._first, key=lambda open_lot: (open_lot.acquired_at, open_lot.sequence))
        else:
            self.lots.append(lot)

    def covers(self, amount_btc: Decimal) -> bool:
        """Whether the holdings cover a sell of `amount_btc` (a sell they don't is left out of every figure)."""
        return amount_btc <= self.holdings_btc

    def remove(self, amount_btc: Decimal, consumed: list[LotPiece] | None = None) -> Decimal:
        """Take `amount_btc` out and return its cost; under a lot method, the pieces of the lots it took are
        appended to `consumed` when given (average cost has no lots, so nothing is appended)."""
        if not self.covers(amount_btc):
            raise ValueError(f"selling {amount_btc} BTC with {self.holdings_btc} held")
        if self.method is CostBasisMethod.AVERAGE:
            removed = self.cost_basis_usd * amount_btc / self.holdings_btc
        else:
            removed = self._remove_from_lots(amount_btc, consumed)
        self.holdings_btc -= amount_btc
        self.cost_basis_usd -= removed
        if self.holdings_btc == 0:
            self.cost_basis_usd = ZERO  # no rounding residue stays behind an empty position
            self.lots.clear()
            self._first = 0
        return removed

    def _next_lot(self) -> Lot:
        if self.method is CostBasisMethod.FIFO:
            return self.lots[self._first]
        return self.lots[-1] if self.method is CostBasisMethod.LIFO else self.lots[0]

    def _drop_next_lot(self) -> None:
        if self.method is CostBasisMethod.FIFO:
            self._first += 1
            if self._first > 64 and self._first * 2 > len(self.lots):
                del self.lots[: self._first]
                self._first = 0
        elif self.method is CostBasisMethod.LIFO:
            self.lots.pop()
        else:
            heapq.heappop(self.lots)

    def _remove_from_lots(self, amount_btc: Decimal, consumed: list[LotPiece] | None) -> Decimal:
        remaining, removed = amount_btc, ZERO
        while remaining > 0:
            lot = self._next_lot()
            if lot.amount_btc <= remaining:
                taken, share = lot.amount_btc, lot.cost_usd
                self._drop_next_lot()
            else:
                taken, share = remaining, lot.cost_usd * remaining / lot.amount_btc
                lot.cost_usd -= share
                lot.amount_btc -= remaining
            if consumed is not None:
                consumed.append(LotPiece(lot.sequence, lot.acquired_at, taken, share))
            removed += share
            remaining -= taken
        return removed

    def open_lots(self) -> list[Lot]:
        return self.lots[self._first:] if self.method is CostBasisMethod.FIFO else list(self.lots)

    def copy(self) -> "CostBasisBook":
        lots = [Lot(lot.sequence, lot.amount_btc, lot.cost_usd, lot.acquired_at) for lot in self.open_lots()]
        return CostBasisBook(self.method, self.holdings_btc, self.cost_basis_usd, lots,
                             buy_times_missing=self.buy_times_missing)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method.value, "holdings_btc": str(self.holdings_btc),
                "cost_basis_usd": str(self.cost_basis_usd),
                "lots": [[lot.sequence, str(lot.amount_btc), str(lot.cost_usd), lot.acquired_at.isoformat()]
                         for lot in self.open_lots()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CostBasisBook":
        """A stored book; lots written before they carried a buy time get UNKNOWN_BUY_TIME and mark the book."""
        lots = [Lot(int(lot[0]), Decimal(lot[1]), Decimal(lot[2]),
                    datetime.fromisoformat(lot[3]) if len(lot) > 3 else UNKNOWN_BUY_TIME) for lot in data["lots"]]
        return cls(CostBasisMethod(data["method"]), Decimal(data["holdings_btc"]), Decimal(data["cost_basis_usd"]),
                   lots, buy_times_missing=any(lot.acquired_at == UNKNOWN_BUY_TIME for lot in lots))
