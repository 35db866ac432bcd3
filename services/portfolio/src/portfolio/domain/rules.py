"""The rules a transaction must satisfy before it is recorded (the value ranges are the contract's own)."""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from contracts.types import (
    InvalidValue,
    check_btc_amount,
    check_fee,
    check_note,
    check_price,
    utc_time,
)

from portfolio.domain.errors import InsufficientHoldings, InvalidTransaction
from portfolio.domain.trades import Trade

T = TypeVar("T")
FIRST_TRADING_DAY = datetime(2010, 7, 17, tzinfo=UTC)


def btc_text(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount != 0 else "0"


def _checked(field: str, check: Callable[[T], T], value: T) -> T:
    """The contract's rule for a field, its refusal as the domain's typed error."""
    try:
        return check(value)
    except InvalidValue as error:
        raise InvalidTransaction(field, str(error)) from None


def _finite(field: str, value: Decimal) -> Decimal:
    if not value.is_finite():
        raise InvalidTransaction(field, f"{field} must be a number, not {value}.")
    return value


def validate_amount(amount: Decimal) -> Decimal:
    return _checked("amount_btc", check_btc_amount, _finite("amount_btc", amount))


def validate_time(at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None:
        raise InvalidTransaction("at", "The time needs a time zone (for example 2024-03-01T10:00:00Z).")
    at = _checked("at", utc_time, at)
    if at < FIRST_TRADING_DAY:
        raise InvalidTransaction("at", "The time must be on or after 2010-07-17, when BTC first traded.")
    if at > now:
        raise InvalidTransaction("at", "The time can't be in the future.")
    return at


def validate_fee(fee: Decimal) -> Decimal:
    return _checked("fee_usd", check_fee, _finite("fee_usd", fee))


def validate_price(price: Decimal | None) -> Decimal | None:
    return None if price is None else _checked("price_usd", check_price, _finite("price_usd", price))


def validate_note(note: str | None) -> str | None:
    return None if note is None else _checked("note", check_note, note)


def _refusal(trade: Trade, held: Decimal) -> InsufficientHoldings:
    when = trade.at.strftime("%Y-%m-%d %H:%M UTC")
    verb = "move" if trade.is_transfer else "sell"
    return InsufficientHoldings(
        f"You hold {btc_text(held)} BTC on {when}; you can't {verb} {btc_text(trade.amount_btc)} BTC.",
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


def check_new_sell(sell: Trade, held_before: Decimal, later_lows: Iterable[tuple[Trade, Decimal]]) -> None:
    """Refuse a new sell that exceeds the BTC held just before it, or that would uncover a later sell.

    `later_lows`: the later sells after which the holdings (without the new sell) reached a new low, in time order,
    each with those holdings. The new sell takes its amount off every later point, so the first later sell it
    uncovers is the first whose holdings after it fall below that amount, and that sell is always such a low."""
    if sell.amount_btc > held_before:
        raise _refusal(sell, held_before)
    for later, held_after in later_lows:
        if held_after < sell.amount_btc:
            raise _refusal(later, held_after + later.amount_btc - sell.amount_btc)
