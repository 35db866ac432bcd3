"""Why a priced sell is left out of the figures: it waits for earlier buys to be priced, or nothing covers it."""

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from contracts.portfolios import TransactionStatus

from portfolio.domain.ledger import UncoveredSell
from portfolio.domain.rules import btc_text
from portfolio.domain.trades import Trade

WAITING_FOR_BUYS = "waiting_for_buys"
INSUFFICIENT_HOLDINGS = "insufficient_holdings"


@dataclass(frozen=True, slots=True)
class SellHold:
    transaction_id: str
    reason: str
    detail: str

    @property
    def status(self) -> TransactionStatus:
        """What the user sees: pending while it waits for buys, failed when no buy can cover it."""
        return TransactionStatus.PENDING if self.reason == WAITING_FOR_BUYS else TransactionStatus.FAILED


def sell_holds(uncovered: Sequence[UncoveredSell], pending_buys: Iterable[Trade]) -> dict[str, SellHold]:
    """Each left-out sell's hold: waiting when the buys still being priced before it would cover it."""
    buys = sorted((t for t in pending_buys if t.is_buy), key=lambda t: t.timeline_key)
    keys = [t.timeline_key for t in buys]
    running, total = [], Decimal(0)
    for buy in buys:
        total += buy.amount_btc
        running.append(total)
    holds = {}
    for sell in uncovered:
        before = bisect.bisect_left(keys, sell.timeline_key)
        pending = running[before - 1] if before else Decimal(0)
        when = sell.at.strftime("%Y-%m-%d %H:%M UTC")
        if sell.held_btc + pending >= sell.amount_btc:
            holds[sell.transaction_id] = SellHold(
                sell.transaction_id, WAITING_FOR_BUYS,
                f"This sell waits for the price of an earlier buy: priced buys hold {btc_text(sell.held_btc)} BTC "
                f"on {when}.")
        else:
            holds[sell.transaction_id] = SellHold(
                sell.transaction_id, INSUFFICIENT_HOLDINGS,
                f"You hold {btc_text(sell.held_btc)} BTC on {when} counting only priced buys; this sell of "
                f"{btc_text(sell.amount_btc)} BTC can't be counted. A buy before it failed to price or was changed: "
                "fix or delete that buy, add the missing buy, or edit this sell.")
    return holds


def public_counts(counts: Mapping[str, int], holds: Iterable[SellHold]) -> dict[str, int]:
    """Transactions by the status users see: a held sell counts as pending or failed, not priced."""
    shown = dict(counts)
    for hold in holds:
        shown["priced"] = shown.get("priced", 0) - 1
        shown[hold.status] = shown.get(hold.status, 0) + 1
    return {status: count for status, count in shown.items() if count}
