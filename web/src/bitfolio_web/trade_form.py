"""The trade dialog's request: what the user typed, as a new trade's body or as only the fields they changed."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bitfolio_web import formatting as fmt

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # the browser's datetime-local value


@dataclass(frozen=True)
class TradeForm:
    """The dialog's fields as text, the way the user sees and types them."""

    amount: str = ""
    when: str = ""  # YYYY-MM-DDTHH:MM in the browser's zone
    fee: str = ""
    price: str = ""
    note: str = ""

    @classmethod
    def of_transaction(cls, row: dict[str, Any], zone_name: str | None) -> "TradeForm":
        """The dialog's fields for a stored trade: its time shown to the minute in the user's zone."""
        at = datetime.fromisoformat(row["at_iso"].replace("Z", "+00:00")).astimezone(fmt.zone(zone_name))
        return cls(amount=row["amount_raw"], when=at.strftime(LOCAL_MINUTE), fee=row["fee_raw"],
                   price=row.get("price_raw") or "", note=row.get("note") or "")

    def new_trade(self, zone_name: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"amount_btc": self.amount.strip(), "at": fmt.to_utc(self.when, zone_name).isoformat(),
                                "fee_usd": self.fee.strip() or "0", "note": self.note or None}
        if self.price.strip():
            body["price_usd"] = self.price.strip()
        return body


def _same_number(typed: str, stored: str) -> bool:
    """Equal as numbers ("0.5" and "0.50000000"); text the gateway would refuse is a change, so it says why."""
    try:
        return Decimal(typed.strip()) == Decimal(stored.strip())
    except InvalidOperation:
        return typed.strip() == stored.strip()


def changed_fields(stored: TradeForm, entered: TradeForm, zone_name: str | None) -> dict[str, Any]:
    """The PATCH body for an edit: only what the user changed.

    Sending an untouched time would send it rounded to the minute the dialog shows, move the trade and
    re-price it; an untouched amount or fee would be a no-op at best.
    """
    body: dict[str, Any] = {}
    if not _same_number(entered.amount, stored.amount):
        body["amount_btc"] = entered.amount.strip()
    if entered.when != stored.when:
        body["at"] = fmt.to_utc(entered.when, zone_name).isoformat()
    if not _same_number(entered.fee or "0", stored.fee or "0"):
        body["fee_usd"] = entered.fee.strip() or "0"
    if not entered.price.strip():
        if stored.price:
            body["price_usd"] = None  # cleared: back to the market price
    elif not stored.price or not _same_number(entered.price, stored.price):
        body["price_usd"] = entered.price.strip()
    if (entered.note or "") != (stored.note or ""):
        body["note"] = entered.note or None
    return body
