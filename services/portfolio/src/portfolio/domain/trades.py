"""A trade as the metrics see it, and its place on the timeline."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from contracts.portfolios import Side


@dataclass(frozen=True, slots=True)
class Trade:
    transaction_id: str
    side: Side
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal
    price_usd: Decimal | None
    """None while pending or failed."""
    sequence: int
    """Recording order; breaks ties between trades at the same instant."""

    @property
    def timeline_key(self) -> tuple[datetime, int]:
        return (self.at, self.sequence)

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY

    @property
    def cost_usd(self) -> Decimal:
        """A priced buy's cost: amount × price + fee."""
        return self.amount_btc * self.price_usd + self.fee_usd  # type: ignore[operator]

    @property
    def proceeds_usd(self) -> Decimal:
        """A priced sell's proceeds: amount × price − fee."""
        return self.amount_btc * self.price_usd - self.fee_usd  # type: ignore[operator]


def in_timeline_order(trades: "list[Trade]") -> "list[Trade]":
    return sorted(trades, key=lambda t: t.timeline_key)
