"""The tax page of a portfolio: a year and a lot method, the totals, one line per lot a sell used, and the CSV."""

from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from bitfolio_web import formatting as fmt
from bitfolio_web.gateway_client import GatewayClient, GatewayError
from bitfolio_web.pages import Dashboard, frame, require_login, tone

LOT_METHODS = {"fifo": "FIFO", "lifo": "LIFO", "hifo": "HIFO"}
FIRST_YEAR = 2009
"""Bitcoin's first year: no sell is older."""


def utc_date(iso: str) -> str:
    """Tax dates are UTC dates, whatever the browser's zone."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d")


class TaxPage:
    def __init__(self, gateway: GatewayClient, portfolio_id: str) -> None:
        self.gateway, self.portfolio_id = gateway, portfolio_id
        self.year = datetime.now(UTC).year
        self.method: str | None = None
        """None until the first report says which method the portfolio's default is."""

    async def build(self) -> None:
        try:
            view = await self.gateway.portfolio(self.portfolio_id)
            recent = await self.gateway.transactions(self.portfolio_id)
        except GatewayError as error:
            ui.label(error.message).classes("text-lg")
            ui.link("Back to portfolios", "/")
            return
        sells = [t["at"] for t in recent if t["side"] == "sell"]
        self.year = int(utc_date(sells[0])[:4]) if sells else self.year  # newest first: the latest sell's year
        years = {year: str(year) for year in range(max(datetime.now(UTC).year, self.year), FIRST_YEAR - 1, -1)}
        with ui.row().classes("w-full items-center justify-between"):
            with ui.row().classes("items-center gap-2"):
                ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to(f"/portfolio/{self.portfolio_id}")
                          ).props("flat round")
                ui.label(f"Tax report · {view['name']}").classes("text-2xl font-semibold")
            with ui.row().classes("items-center gap-2"):
                self.year_picker = ui.select(years, value=self.year, label="Year", on_change=self.pick).props(
                    "outlined dense").classes("w-28").mark("tax-year")
                self.method_picker = ui.select(LOT_METHODS, label="Lots", on_change=self.pick).props(
                    "outlined dense").classes("w-28").mark("tax-method")
                ui.button("Download CSV", icon="download", on_click=self.download).props("outline").mark(
                    "tax-download")
        self.cards = ui.element("div").classes("grid grid-cols-2 sm:grid-cols-3 lg:grid-cols-5 gap-3 w-full")
        self.note = ui.label().classes("text-sm opacity-70")
        with ui.card().classes("w-full"):
            self.table = ui.table(columns=self.columns(), rows=[]).classes("w-full").props(
                "flat dense wrap-cells").mark("tax-lines")
        await self.load()

    async def pick(self) -> None:
        year, method = self.year_picker.value, self.method_picker.value
        if (year, method) != (self.year, self.method):
            self.year, self.method = year, method
            await self.load()

    async def load(self) -> None:
        try:
            report = await self.gateway.tax_report(self.portfolio_id, self.year, self.method)
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        self.method = report["method"]
        self.method_picker.value = self.method
        self.render_totals(report["totals"])
        pending = report["pending_sells"]
        count = len(report["lines"])
        self.note.text = (f"{count} line{'s' if count != 1 else ''} for {report['year']}, lots taken "
                          f"{LOT_METHODS[self.method]}; "
                          "dates are UTC. Long term: sold later than a year after the buy date."
                          + (f" {pending} sell{'s' if pending != 1 else ''} of this year still wait for a price "
                             "and are not counted yet." if pending else ""))
        self.table.rows = [self.row(line) for line in report["lines"]]
        self.table.update()

    def render_totals(self, totals: dict[str, str]) -> None:
        cards = [("Proceeds", totals["proceeds_usd"], False), ("Cost basis", totals["cost_basis_usd"], False),
                 ("Gain or loss", totals["gain_usd"], True), ("Short-term", totals["short_term_gain_usd"], True),
                 ("Long-term", totals["long_term_gain_usd"], True)]
        self.cards.clear()
        with self.cards:
            for label, value, signed in cards:
                with ui.card().classes("p-3").mark(f"tax-{label.lower().replace(' ', '-')}"):
                    ui.label(label).classes("metric-label")
                    ui.label(fmt.usd(value, signed)).classes(f"metric-value {tone(value) if signed else ''}")

    @staticmethod
    def row(line: dict[str, Any]) -> dict[str, Any]:
        return {"sold": utc_date(line["sold_at"]), "acquired": utc_date(line["acquired_at"]),
                "amount": fmt.btc(line["amount_btc"]), "proceeds": fmt.usd(line["proceeds_usd"]),
                "cost": fmt.usd(line["cost_basis_usd"]), "gain": fmt.usd(line["gain_usd"], True),
                "term": "Long" if line["term"] == "long" else "Short"}

    @staticmethod
    def columns() -> list[dict[str, Any]]:
        names = [("sold", "Sold"), ("acquired", "Acquired"), ("amount", "Amount"), ("proceeds", "Proceeds"),
                 ("cost", "Cost basis"), ("gain", "Gain or loss"), ("term", "Term")]
        return [{"name": key, "label": label, "field": key, "align": "left"} for key, label in names]

    async def download(self) -> None:
        try:
            filename, content = await self.gateway.tax_report_csv(self.portfolio_id, self.year,
                                                                  self.method or "fifo")
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        ui.download.content(content, filename, "text/csv")


def register_tax_page(dashboard: Dashboard) -> None:
    @ui.page("/portfolio/{portfolio_id}/tax")
    async def tax_page(portfolio_id: str) -> None:
        gateway = require_login(dashboard)
        if gateway is None:
            return
        with frame(dashboard, "Tax report"):
            await TaxPage(gateway, portfolio_id).build()
