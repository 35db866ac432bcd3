"""A trade as the metrics see it, and its place on the timeline."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from contracts.portfolios import Side, TransactionKind

from portfolio.domain.transfers import MovedLot


@dataclass(slots=True)
class Trade:
    """A trade as the metrics see it (a value, not frozen: a replay makes one per trade, and a frozen dataclass sets
    each field through object.__setattr__, several times slower)."""

    transaction_id: str
    side: Side
    amount_btc: Decimal
    at: datetime
    fee_usd: Decimal
    price_usd: Decimal | None
    """None while pending or failed."""
    sequence: int
    """Recording order; breaks ties between trades at the same instant."""
    kind: TransactionKind = TransactionKind.TRADE
    fee_btc: Decimal = Decimal(0)
    """A transfer's BTC lost on the way (a transfer-in's `amount_btc` is what arrived)."""
    lots: tuple[MovedLot, ...] = ()
    """A transfer-in's lots as they arrived (their cost and original buy times)."""

    @property
    def timeline_key(self) -> tuple[datetime, int]:
        return (self.at, self.sequence)

    @property
    def is_buy(self) -> bool:
        """BTC arrives (a buy or a transfer-in); otherwise it leaves (a sell or a transfer-out)."""
        return self.side == Side.BUY

    @property
    def is_transfer(self) -> bool:
        return self.kind != TransactionKind.TRADE

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
