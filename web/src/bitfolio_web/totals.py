"""The portfolio list's summary: the total over every portfolio, and the latest BTC price with its time."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nicegui import ui

from bitfolio_web import formatting as fmt
from bitfolio_web.viewer import Viewer

TOTAL_ROI_TOOLTIP = ("ROI of the total: the net result of every portfolio divided by all they invested, × 100 "
                     "(not an average of the portfolios' ROIs).")


@dataclass(frozen=True)
class Totals:
    value_usd: Decimal
    net_result_usd: Decimal
    invested_usd: Decimal
    holdings_btc: Decimal
    roi_pct: Decimal | None
    """None while nothing is invested."""


def portfolio_totals(portfolios: Iterable[dict[str, Any]]) -> Totals:
    """The sum of the portfolios' own figures; the total's ROI is its net result over its investment."""
    metrics = [portfolio["metrics"] for portfolio in portfolios]

    def total(figure: str) -> Decimal:
        return sum((Decimal(m[figure]) for m in metrics), Decimal(0))
    invested, net = total("invested_usd"), total("net_result_usd")
    return Totals(value_usd=total("current_value_usd"), net_result_usd=net, invested_usd=invested,
                  holdings_btc=total("holdings_btc"), roi_pct=net / invested * 100 if invested else None)


def price_line(latest: dict[str, Any] | None, zone: str | None) -> str:
    if not latest:
        return "No BTC price yet"
    return f"BTC {fmt.usd(latest['price_usd'])} · as of {fmt.local_time(latest['as_of'], zone)}"


def totals_card(totals: Totals, latest: dict[str, Any] | None, zone: str | None, viewer: Viewer) -> None:
    with ui.card().classes("w-full").mark("portfolio-totals"):
        with ui.row().classes("w-full items-end justify-between gap-6"):
            for label, value, css, marker in (
                    ("Total value", fmt.usd(totals.value_usd), "", "total-value"),
                    ("Net result", fmt.usd(totals.net_result_usd, signed=True), fmt.tone(totals.net_result_usd),
                     "total-net"),
                    ("Invested", fmt.usd(totals.invested_usd), "", "total-invested"),
                    ("Holdings", viewer.btc(totals.holdings_btc), "", "total-holdings")):
                with ui.column().classes("gap-0"):
                    ui.label(label).classes("metric-label")
                    ui.label(value).classes(f"metric-value {css}").mark(marker)
            with ui.column().classes("gap-0"):
                with ui.row().classes("items-center gap-1"):
                    ui.label("ROI").classes("metric-label")
                    ui.icon("info_outline", size="xs").classes("opacity-60").tooltip(TOTAL_ROI_TOOLTIP)
                ui.label(fmt.pct(totals.roi_pct)).classes(f"metric-value {fmt.tone(totals.roi_pct)}").mark("total-roi")
            ui.label(price_line(latest, zone)).classes("text-sm opacity-70 tabular").mark("latest-price")

