"""How money, BTC, percentages and times are shown: grouped, exact until display, in the browser's time zone."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _decimal(value: str | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def usd(value: str | Decimal | None, signed: bool = False) -> str:
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "+" if signed and rounded > 0 else ("−" if rounded < 0 else "")
    return f"{sign}${abs(rounded):,.2f}"


SATS_PER_BTC = Decimal(100_000_000)


def btc(value: str | Decimal | None, in_sats: bool = False) -> str:
    """An amount of BTC to the satoshi, or as a whole number of sats."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    if in_sats:
        sats = (amount * SATS_PER_BTC).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return f"{sats:,} {'sat' if abs(sats) == 1 else 'sats'}"
    return f"{amount.quantize(Decimal('0.00000001')):,.8f} BTC"


def pct(value: str | Decimal | None, signed: bool = True) -> str:
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "+" if signed and rounded > 0 else ("−" if rounded < 0 else "")
    return f"{sign}{abs(rounded):,.2f}%"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(iso: str | None, zone_name: str | None) -> str:
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone(zone_name))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def to_utc(local: str, zone_name: str | None) -> datetime:
    """A browser `datetime-local` value (YYYY-MM-DDTHH:MM) in the user's zone, as an aware UTC time."""
    naive = datetime.fromisoformat(local)
    return naive.replace(tzinfo=zone(zone_name)).astimezone(UTC)


def positive(value: str | Decimal | None) -> bool | None:
    amount = _decimal(value)
    return None if amount is None else amount >= 0


def tone(value: str | Decimal | None) -> str:
    """The CSS class of a signed figure: gain, loss, or none."""
    return "" if value is None else ("gain" if Decimal(value) >= 0 else "loss")
