"""What the person at this browser sees: BTC in sats or in BTC (their choice, kept for the browser session), and
whether their account may write (the demo is read-only, so its pages show no write actions)."""

from dataclasses import dataclass
from decimal import Decimal

from nicegui import app, ui

from bitfolio_web import formatting as fmt


@dataclass(frozen=True)
class Viewer:
    in_sats: bool = False
    read_only: bool = False

    @classmethod
    def of_session(cls) -> "Viewer":
        """Read once while a page is built: live updates run outside the page request, where storage is not."""
        user = app.storage.user.get("user") or {}
        return cls(in_sats=bool(app.storage.user.get("sats", False)), read_only=bool(user.get("is_demo", False)))

    @property
    def can_write(self) -> bool:
        return not self.read_only

    def btc(self, value: str | Decimal | None) -> str:
        return fmt.btc(value, self.in_sats)


def sats_toggle(viewer: Viewer) -> None:
    """A header button that switches every BTC amount between BTC and sats, and redraws the page."""
    def toggle() -> None:
        app.storage.user["sats"] = not viewer.in_sats
        ui.navigate.reload()
    label = "Show BTC" if viewer.in_sats else "Show sats"
    ui.button("BTC" if viewer.in_sats else "sats", on_click=toggle).props("flat dense no-caps").tooltip(
        label).mark("sats-toggle")


def read_only_badge(viewer: Viewer) -> None:
    if viewer.read_only:
        ui.badge("Read-only demo", color="orange-7").tooltip(
            "The demo can't be changed; register to keep your own portfolios.").mark("read-only")
