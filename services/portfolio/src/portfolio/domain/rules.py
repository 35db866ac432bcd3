"""The rules a transaction must satisfy before it is recorded."""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from portfolio.domain.errors import InsufficientHoldings, InvalidTransaction
from portfolio.domain.trades import Trade

SATOSHI = Decimal("0.00000001")
MAX_BTC = Decimal(21_000_000)
MAX_USD = Decimal(10) ** 15
FIRST_TRADING_DAY = datetime(2010, 7, 17, tzinfo=UTC)


def btc_text(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount != 0 else "0"


def validate_amount(amount: Decimal) -> Decimal:
    if not amount.is_finite() or amount <= 0:
        raise InvalidTransaction("amount_btc", "The amount must be more than 0 BTC.")
    if amount > MAX_BTC:
        raise InvalidTransaction("amount_btc", "The amount can't exceed 21,000,000 BTC, the total supply.")
    if amount != amount.quantize(SATOSHI):
        raise InvalidTransaction("amount_btc", "The amount can have at most 8 decimals (1 satoshi = 0.00000001 BTC).")
    return amount


def validate_time(at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None:
        raise InvalidTransaction("at", "The time needs a time zone (for example 2024-03-01T10:00:00Z).")
    if at < FIRST_TRADING_DAY:
        raise InvalidTransaction("at", "The time must be on or after 2010-07-17, when BTC first traded.")
    if at > now:
        raise InvalidTransaction("at", "The time can't be in the future.")
    return at.astimezone(UTC)


def validate_fee(fee: Decimal) -> Decimal:
    if not fee.is_finite() or fee < 0:
        raise InvalidTransaction("fee_usd", "The fee can't be negative.")
    if fee > MAX_USD:
        raise InvalidTransaction("fee_usd", "The fee is implausibly large.")
    return fee


def validate_price(price: Decimal | None) -> Decimal | None:
    if price is not None and (not price.is_finite() or price <= 0 or price > MAX_USD):
        raise InvalidTransaction("price_usd", "The price must be a positive amount of USD.")
    return price


def _refusal(trade: Trade, held: Decimal) -> InsufficientHoldings:
    when = trade.at.strftime("%Y-%m-%d %H:%M UTC")
    return InsufficientHoldings(
        f"You hold {btc_text(held)} BTC on {when}; you can't sell {btc_text(trade.amount_btc)} BTC.",
        {"at": trade.at.isoformat(), "held_btc": str(held), "wanted_btc": str(trade.amount_btc),
         "transaction_id": trade.transaction_id},
    )


def refuse_oversized_sells(existing: Iterable[Trade], new: Iterable[Trade]) -> dict[str, InsufficientHoldings]:
    """For a batch (an import): which new sells exceed the holdings at their time, in one pass.

    A refused sell is left out, so the rows after it are judged without it. Raises InsufficientHoldings when the
    accepted new trades would break a sell that is already recorded."""
    existing, new = list(existing), list(new)
    fresh = {t.transaction_id for t in new}
    trades = sorted([*existing, *new], key=lambda t: t.timeline_key)
    refused: dict[str, InsufficientHoldings] = {}
    held = Decimal(0)
    for trade in trades:
        if trade.is_buy:
            held += trade.amount_btc
        elif trade.amount_btc <= held:
            held -= trade.amount_btc
        elif trade.transaction_id in fresh:
            refused[trade.transaction_id] = _refusal(trade, held)
        else:
            raise _refusal(trade, held)
    return refused


def check_holdings(trades: Iterable[Trade]) -> None:
    """Refuse a timeline in which any sell exceeds the BTC held at its time."""
    held = Decimal(0)
    for trade in sorted(trades, key=lambda t: t.timeline_key):
        if trade.is_buy:
            held += trade.amount_btc
            continue
        if trade.amount_btc > held:
            raise _refusal(trade, held)
        held -= trade.amount_btc
