"""Transfers between portfolios: the lots that leave a source and what arrives in the destination."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from contracts.portfolios import TransactionStatus

from portfolio.domain.errors import InvalidTransaction

ZERO = Decimal(0)
WAITING_FOR_SOURCE = ("The transfer waits for the source portfolio to count it (its price, or the price of a buy "
                      "before it).")


@dataclass(frozen=True, slots=True)
class MovedLot:
    """BTC moved between portfolios with the cost that goes with it and the time it was first bought."""

    acquired_at: datetime
    amount_btc: Decimal
    cost_usd: Decimal

    def to_json(self) -> list[str]:
        return [self.acquired_at.isoformat(), str(self.amount_btc), str(self.cost_usd)]

    @classmethod
    def from_json(cls, data: Sequence[str]) -> "MovedLot":
        return cls(datetime.fromisoformat(data[0]), Decimal(data[1]), Decimal(data[2]))


def lots_to_json(lots: Sequence[MovedLot]) -> list[list[str]]:
    return [lot.to_json() for lot in lots]


def lots_from_json(data: Sequence[Sequence[str]] | None) -> tuple[MovedLot, ...]:
    return tuple(MovedLot.from_json(item) for item in data or ())


def validate_transfer_fee(fee_btc: Decimal, amount_btc: Decimal) -> Decimal:
    """0 ≤ fee < amount, in whole satoshis: something must arrive."""
    if not fee_btc.is_finite() or fee_btc < 0 or fee_btc != fee_btc.quantize(Decimal("0.00000001")):
        raise InvalidTransaction("fee_btc", "The fee must be 0 or more BTC, with at most 8 decimals.")
    if fee_btc >= amount_btc:
        raise InvalidTransaction("fee_btc", "The fee must be less than the amount sent: something has to arrive.")
    return fee_btc


def arriving_lots(sent: Sequence[MovedLot], fee_btc: Decimal) -> tuple[MovedLot, ...]:
    """The lots that arrive: the fee comes off the last lots sent, whose cost stays behind in the last lot that
    remains, so the destination receives amount − fee with the whole cost."""
    lots = list(sent)
    fee, orphan_cost = fee_btc, ZERO
    while fee > 0 and lots:
        last = lots[-1]
        if last.amount_btc > fee:
            lots[-1] = MovedLot(last.acquired_at, last.amount_btc - fee, last.cost_usd + orphan_cost)
            return tuple(lots)
        fee -= last.amount_btc
        orphan_cost += last.cost_usd
        lots.pop()
    if orphan_cost and lots:
        last = lots[-1]
        lots[-1] = MovedLot(last.acquired_at, last.amount_btc, last.cost_usd + orphan_cost)
    return tuple(lots)


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the destination's side of a transfer holds: the price and lots once the source counts the transfer,
    or why not yet (pending) or not at all (failed)."""

    status: TransactionStatus
    price_usd: Decimal | None = None
    price_hour: int | None = None
    lots: tuple[MovedLot, ...] = ()
    reason: str | None = None
    detail: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"status": self.status.value, "price_usd": None if self.price_usd is None else str(self.price_usd),
                "price_hour": self.price_hour, "lots": lots_to_json(self.lots), "reason": self.reason,
                "detail": self.detail}

    @classmethod
    def read(cls, payload: dict[str, Any]) -> "Arrival":
        price = payload.get("price_usd")
        return cls(TransactionStatus(payload["status"]), None if price is None else Decimal(price),
                   payload.get("price_hour"), lots_from_json(payload.get("lots")), payload.get("reason"),
                   payload.get("detail"))


def counted_arrival(price_usd: Decimal, price_hour: int | None, sent: Sequence[MovedLot], fee_btc: Decimal
                    ) -> Arrival:
    return Arrival(TransactionStatus.PRICED, price_usd, price_hour, arriving_lots(sent, fee_btc))


def waiting_arrival(detail: str = WAITING_FOR_SOURCE) -> Arrival:
    return Arrival(TransactionStatus.PENDING, detail=detail)


def withheld_arrival(status: TransactionStatus, reason: str | None, detail: str | None) -> Arrival:
    """The source does not count the transfer: the destination shows the source's status and reason."""
    shown = f"In the source portfolio: {detail}" if detail else WAITING_FOR_SOURCE
    return Arrival(status, reason=reason if status == TransactionStatus.FAILED else None, detail=shown)
