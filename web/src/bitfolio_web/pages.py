"""The dashboard's pages: sign-in, the portfolio list and a portfolio with its metrics, chart and trades."""

import asyncio
import contextlib
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from contracts.portfolios import IMPORT_FORMATS
from nicegui import app, ui
from nicegui.client import Client

from bitfolio_web import formatting as fmt
from bitfolio_web.form_inputs import amount_input, field_errors, time_input
from bitfolio_web.formatting import tone
from bitfolio_web.gateway_client import GatewayClient, GatewayError, UserAction
from bitfolio_web.live import LiveUpdates
from bitfolio_web.settings import Settings
from bitfolio_web.totals import portfolio_totals, totals_card
from bitfolio_web.trade_form import TradeForm, changed_fields
from bitfolio_web.transfer_dialog import open_transfer_dialog
from bitfolio_web.viewer import Viewer, read_only_badge, sats_toggle

METHODS = {"average": "Average cost", "fifo": "FIFO", "lifo": "LIFO", "hifo": "HIFO"}
RANGES = ("1W", "1M", "YTD", "1Y", "All")
GREEN, RED = "#16a34a", "#dc2626"
STYLE = """
<style>
  body { font-family: Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
  .metric-label { font-size: .72rem; letter-spacing: .06em; text-transform: uppercase; opacity: .65; }
  .metric-value { font-size: 1.25rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  .gain { color: #16a34a; } .loss { color: #dc2626; }
  .tabular { font-variant-numeric: tabular-nums; }
</style>
"""


class Dashboard:
    """Shared services of every page: settings, one HTTP client, and the live-update feed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Drop idle connections before the gateway (uvicorn: 5 s keep-alive) does, so none is reused half-closed.
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))
        self.live = LiveUpdates(settings.rabbit_url, settings.live_prefetch)
        # One refresh lock per browser session, alive while some request of that session holds it.
        self.refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def gateway(self) -> GatewayClient:
        session = str(app.storage.browser["id"])
        lock = self.refresh_locks.get(session)
        if lock is None:
            lock = self.refresh_locks[session] = asyncio.Lock()
        try:
            browser_address = ui.context.client.ip or None
        except RuntimeError:  # no page request in this context (a background task)
            browser_address = None
        return GatewayClient(self.settings.gateway_url, app.storage.user, self.http, lock, browser_address)


async def browser_zone() -> str:
    """The browser's IANA time zone, asked once per session."""
    if "tz" not in app.storage.user:
        await ui.context.client.connected()
        try:
            app.storage.user["tz"] = await ui.run_javascript("Intl.DateTimeFormat().resolvedOptions().timeZone",
                                                             timeout=5)
        except TimeoutError:
            app.storage.user["tz"] = "UTC"
    return str(app.storage.user["tz"])


@contextlib.contextmanager
def frame(dashboard: Dashboard, title: str) -> Iterator[None]:
    """Header with brand, dark-mode switch and logout; a banner while live updates are cut off."""
    ui.add_head_html(STYLE)
    ui.page_title(f"{title} · Bitfolio")
    dark = ui.dark_mode(value=app.storage.user.get("dark", False))
    gateway = dashboard.gateway()
    with ui.header().classes("items-center justify-between px-4 py-2 bg-white dark:bg-slate-900 text-slate-900 "
                             "dark:text-white shadow-sm"):
        with ui.link(target="/").classes("no-underline text-inherit flex items-center gap-2"):
            ui.icon("currency_bitcoin", color="orange-7", size="md")
            ui.label("Bitfolio").classes("text-xl font-bold")
        with ui.row().classes("items-center gap-1"):
            viewer = Viewer.of_session()
            read_only_badge(viewer)
            sats_toggle(viewer)

            def toggle_dark() -> None:
                dark.value = not dark.value
                app.storage.user["dark"] = dark.value
            ui.button(icon="dark_mode", on_click=toggle_dark).props("flat round").tooltip("Dark mode")
            user = app.storage.user.get("user") or {}
            ui.label(user.get("email", "")).classes("text-sm opacity-70 hidden sm:block")

            async def logout() -> None:
                await gateway.logout()
                ui.navigate.to("/login")
            ui.button(icon="logout", on_click=logout).props("flat round").tooltip("Log out").mark("logout")
    banner = ui.label("Live updates are paused: the connection to the server dropped. Figures will catch up "
                      "when it returns.").classes("w-full bg-amber-100 text-amber-900 p-2 text-center")
    banner.set_visibility(not dashboard.live.connected)
    page_client = ui.context.client

    async def on_status(connected: bool) -> None:
        with page_client:
            banner.set_visibility(not connected)
    stop = dashboard.live.watch_status(on_status)
    page_client.on_disconnect(stop)
    with ui.column().classes("w-full max-w-6xl mx-auto p-4 gap-4"):
        yield


def require_login(dashboard: Dashboard) -> GatewayClient | None:
    gateway = dashboard.gateway()
    if not gateway.logged_in:
        ui.navigate.to("/login")
        return None
    return gateway


def register_pages(dashboard: Dashboard) -> None:
    @ui.page("/login")
    async def login_page() -> None:
        ui.add_head_html(STYLE)
        ui.page_title("Sign in · Bitfolio")
        ui.dark_mode(value=app.storage.user.get("dark", False))
        gateway = dashboard.gateway()
        with ui.column().classes("absolute-center items-center w-full max-w-sm gap-4 p-4"):
            with ui.row().classes("items-center gap-2"):
                ui.icon("currency_bitcoin", color="orange-7", size="lg")
                ui.label("Bitfolio").classes("text-3xl font-bold")
            ui.label("Your Bitcoin, to the satoshi and the cent.").classes("opacity-70")
            with ui.card().classes("w-full"):
                with ui.tabs().classes("w-full") as tabs:
                    sign_in = ui.tab("Log in")
                    sign_up = ui.tab("Register")
                with ui.tab_panels(tabs, value=sign_in).classes("w-full"):
                    for tab, action in ((sign_in, "login"), (sign_up, "register")):
                        with ui.tab_panel(tab):
                            email = ui.input("Email").props("type=email outlined").classes("w-full").mark(
                                f"{action}-email")
                            password = ui.input("Password", password=True, password_toggle_button=True).props(
                                "outlined").classes("w-full").mark(f"{action}-password")

                            async def submit(action: str = action, email: ui.input = email,
                                             password: ui.input = password) -> None:
                                try:
                                    if action == "login":
                                        await gateway.login(email.value, password.value)
                                    else:
                                        await gateway.register(email.value, password.value)
                                except GatewayError as error:
                                    field_errors(error, {"email": email, "password": password})
                                    return
                                ui.navigate.to("/")
                            label = "Log in" if action == "login" else "Create account"
                            ui.button(label, on_click=submit).classes("w-full").props("unelevated color=primary"
                                                                                     ).mark(f"{action}-submit")
                            password.on("keydown.enter", submit)

            async def demo() -> None:
                try:
                    await gateway.demo()
                except GatewayError as error:
                    ui.notify(error.message, type="negative")
                    return
                ui.navigate.to("/")
            ui.button("Try the demo", icon="play_arrow", on_click=demo).props("outline").classes("w-full").mark(
                "demo")

    @ui.page("/")
    async def portfolios_page() -> None:
        gateway = require_login(dashboard)
        if gateway is None:
            return
        zone = await browser_zone()
        viewer = Viewer.of_session()
        with frame(dashboard, "Portfolios"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Portfolios").classes("text-2xl font-semibold")
                if viewer.can_write:
                    ui.button("New portfolio", icon="add", on_click=lambda: create_dialog.open()).props(
                        "unelevated color=primary").mark("new-portfolio")
            summary = ui.element("div").classes("w-full")
            grid = ui.element("div").classes("grid grid-cols-1 sm:grid-cols-2 lg:grid-cols-3 gap-4 w-full")

            async def load(update: Any = None) -> None:
                try:  # a portfolio.updated names the version to show at least (a tick has none)
                    items = await gateway.portfolios_after(getattr(update, "portfolio_id", None),
                                                           getattr(update, "version", None))
                except GatewayError as error:
                    if error.status == 401:
                        ui.navigate.to("/login")
                        return
                    ui.notify(error.message, type="negative")
                    return
                summary.clear()
                if items:
                    with summary:
                        totals_card(portfolio_totals(items), await gateway.latest_price(), zone, viewer)
                grid.clear()
                with grid:
                    if not items:
                        ui.label("No portfolios yet. Create one to record your first trade.").classes("opacity-70")
                    for item in items:
                        portfolio_card(item)

            def portfolio_card(item: dict[str, Any]) -> None:
                m = item["metrics"]
                with ui.card().classes("w-full cursor-pointer hover:shadow-lg transition-shadow").mark(
                        "portfolio-card"):
                    with ui.row().classes("w-full items-center justify-between"):
                        ui.link(item["name"], f"/portfolio/{item['portfolio_id']}").classes(
                            "text-lg font-semibold no-underline text-inherit")
                        if m.get("roi_pct") is not None:
                            ui.badge(fmt.pct(m["roi_pct"]), color="positive" if fmt.positive(m["roi_pct"])
                                     else "negative").classes("text-sm")
                    ui.label(fmt.usd(m["current_value_usd"])).classes("text-2xl font-bold tabular")
                    ui.label(f"Net {fmt.usd(m['net_result_usd'], signed=True)}").classes(
                        f"tabular {tone(m['net_result_usd'])}")
                    ui.label(viewer.btc(m["holdings_btc"])).classes("text-sm opacity-70 tabular")
                    if m.get("goal_progress_pct") is not None:
                        progress = min(Decimal(m["goal_progress_pct"]) / 100, Decimal(1))
                        ui.linear_progress(value=float(progress), show_value=False).props("rounded")
                        ui.label(f"{fmt.pct(m['goal_progress_pct'], signed=False)} of "
                                 f"{fmt.usd(item['goal_usd'])} goal").classes("text-xs opacity-70")
                    with ui.row().classes("w-full justify-end gap-0"):
                        ui.button(icon="open_in_new", on_click=lambda i=item: ui.navigate.to(
                            f"/portfolio/{i['portfolio_id']}")).props("flat round dense").tooltip("Open")
                        if viewer.can_write:
                            ui.button(icon="edit", on_click=lambda i=item: rename(i)).props(
                                "flat round dense").tooltip("Rename")
                            ui.button(icon="delete", on_click=lambda i=item: delete(i)).props(
                                "flat round dense color=negative").tooltip("Delete")

            create_action = UserAction()  # a retried Create reuses its key, so it never makes two portfolios
            with ui.dialog() as create_dialog, ui.card().classes("w-full max-w-md"):
                ui.label("New portfolio").classes("text-lg font-semibold")
                name = ui.input("Name").props("outlined").classes("w-full").mark("portfolio-name")
                goal = ui.input("Goal in USD (optional)").props("outlined inputmode=decimal").classes("w-full")
                method = ui.select(METHODS, value="average", label="Cost-basis method").props("outlined").classes(
                    "w-full")

                async def create() -> None:
                    try:
                        created = await gateway.create_portfolio(name.value, goal.value or None, method.value,
                                                                 create_action)
                    except GatewayError as error:
                        field_errors(error, {"name": name, "goal_usd": goal})
                        return
                    create_dialog.close()
                    ui.navigate.to(f"/portfolio/{created['portfolio_id']}")
                with ui.row().classes("w-full justify-end"):
                    ui.button("Cancel", on_click=create_dialog.close).props("flat")
                    ui.button("Create", on_click=create).props("unelevated color=primary").mark("create-portfolio")

            async def rename(item: dict[str, Any]) -> None:
                with ui.dialog() as dialog, ui.card():
                    field = ui.input("Name", value=item["name"]).props("outlined")
                    with ui.row().classes("justify-end w-full"):
                        ui.button("Cancel", on_click=dialog.close).props("flat")
                        ui.button("Save", on_click=lambda: dialog.submit(field.value)).props("unelevated")
                new_name = await dialog
                if new_name:
                    try:
                        await gateway.update_portfolio(item["portfolio_id"], name=new_name)
                    except GatewayError as error:
                        ui.notify(error.message, type="negative")
                    await load()

            async def delete(item: dict[str, Any]) -> None:
                if await confirm(f"Delete “{item['name']}” and all its transactions? This cannot be undone."):
                    try:
                        await gateway.delete_portfolio(item["portfolio_id"])
                    except GatewayError as error:
                        ui.notify(error.message, type="negative")
                    await load()

            await load()
            owner = (app.storage.user.get("user") or {}).get("id")
            page_client = ui.context.client

            async def on_update(update: Any) -> None:
                with page_client:
                    await load(update)
            if owner:
                page_client.on_disconnect(await dashboard.live.watch_owner(owner, on_update))
                page_client.on_disconnect(dashboard.live.watch_ticks(on_update))

    @ui.page("/portfolio/{portfolio_id}")
    async def portfolio_page(portfolio_id: str) -> None:
        gateway = require_login(dashboard)
        if gateway is None:
            return
        zone = await browser_zone()
        with frame(dashboard, "Portfolio"):
            await PortfolioPage(dashboard, gateway, portfolio_id, zone, ui.context.client).build()

    from bitfolio_web.tax_page import register_tax_page  # here: the tax page is built from this module's frame
    register_tax_page(dashboard)


async def confirm(question: str) -> bool:
    with ui.dialog() as dialog, ui.card():
        ui.label(question)
        with ui.row().classes("justify-end w-full"):
            ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat")
            ui.button("Delete", on_click=lambda: dialog.submit(True)).props("unelevated color=negative").mark(
                "confirm-delete")
    return bool(await dialog)


class PortfolioPage:
    """One portfolio: metric cards, method and goal, the value chart, and the transactions with live status."""

    def __init__(self, dashboard: Dashboard, gateway: GatewayClient, portfolio_id: str, zone: str,
                 client: Client) -> None:
        self.dashboard, self.gateway, self.portfolio_id, self.zone, self.client = (
            dashboard, gateway, portfolio_id, zone, client)
        self.view: dict[str, Any] = {}
        self.viewer = Viewer.of_session()
        self.rows: list[dict[str, Any]] = []
        self.range = "All"

    async def build(self) -> None:
        try:
            self.view = await self.gateway.portfolio(self.portfolio_id)
        except GatewayError as error:
            ui.label(error.message).classes("text-lg")
            ui.link("Back to portfolios", "/")
            return
        with ui.row().classes("w-full items-center justify-between"):
            with ui.row().classes("items-center gap-2"):
                ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to("/")).props("flat round")
                self.title = ui.label(self.view["name"]).classes("text-2xl font-semibold")
            with ui.row().classes("items-center gap-2"):
                ui.button("Tax report", icon="receipt_long", on_click=lambda: ui.navigate.to(
                    f"/portfolio/{self.portfolio_id}/tax")).props("outline").mark("tax-report")
                if self.viewer.read_only:
                    ui.label(f"Cost basis: {METHODS[self.view['cost_basis_method']]}").classes("opacity-70")
                else:
                    self.method = ui.select(METHODS, value=self.view["cost_basis_method"], label="Cost basis",
                                            on_change=self.change_method).props("outlined dense").classes("w-40")
                    ui.button("Add trade", icon="add", on_click=lambda: self.trade_dialog()).props(
                        "unelevated color=primary").mark("add-trade")
                    ui.button("Move BTC", icon="swap_horiz", on_click=lambda: open_transfer_dialog(
                        self.gateway, self.portfolio_id, self.zone, self.refresh)).props("outline").mark("move-btc")
        self.cards = ui.element("div").classes("grid grid-cols-2 sm:grid-cols-3 lg:grid-cols-4 gap-3 w-full")
        with ui.row().classes("w-full gap-4 no-wrap max-md:flex-wrap"):
            with ui.card().classes("grow min-w-0"):
                with ui.row().classes("w-full items-center justify-between"):
                    ui.label("Value over time").classes("font-semibold")
                    with ui.button_group().props("flat"):
                        for name in RANGES:
                            ui.button(name, on_click=lambda n=name: self.set_range(n)).props("flat dense")
                self.chart = ui.echart(self.chart_options([])).classes("w-full h-72").mark("value-chart")
            with ui.card().classes("w-full md:w-72"):
                ui.label("Goal").classes("font-semibold")
                self.donut = ui.echart(self.donut_options()).classes("w-full h-56")
                if self.viewer.can_write:
                    goal = ui.input("Goal in USD", value=self.view.get("goal_usd") or "").props("dense outlined")
                    ui.button("Save goal", on_click=lambda: self.save_goal(goal.value)).props("flat dense")
        with ui.card().classes("w-full"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Transactions").classes("font-semibold")
                with ui.row().classes("gap-1"):
                    if self.viewer.can_write:
                        ui.button("Import CSV", icon="upload", on_click=self.import_dialog).props("flat dense")
                    ui.button("Export CSV", icon="download", on_click=self.export).props("flat dense")
            self.table = ui.table(columns=self.columns(), rows=[], row_key="transaction_id").classes(
                "w-full").props("flat dense wrap-cells").mark("transactions")
            self.table.add_slot("body-cell-status", """
                <q-td :props="props">
                  <q-spinner v-if="props.row.status === 'pending'" color="primary" size="1.2em" class="q-mr-xs"/>
                  <q-badge v-if="props.row.status === 'priced'" color="positive">priced</q-badge>
                  <q-badge v-else-if="props.row.status === 'failed'" color="negative">failed
                    <q-tooltip>{{ props.row.failure }}</q-tooltip></q-badge>
                  <span v-else>pending</span>
                </q-td>""")
            if self.viewer.can_write:
                self.table.add_slot("body-cell-actions", """
                <q-td :props="props">
                  <q-btn flat round dense size="sm" icon="edit" @click="$parent.$emit('edit', props.row)"/>
                  <q-btn flat round dense size="sm" icon="delete" color="negative"
                         @click="$parent.$emit('remove', props.row)"/>
                </q-td>""")
            self.table.on("edit", lambda e: self.trade_dialog(e.args) if not e.args.get("transfer_id") else
                          open_transfer_dialog(self.gateway, self.portfolio_id, self.zone, self.refresh, e.args))
            self.table.on("remove", lambda e: self.remove(e.args))
        await self.reload()
        await self.load_chart()
        owner = (app.storage.user.get("user") or {}).get("id")
        if owner:
            self.client.on_disconnect(await self.dashboard.live.watch_owner(owner, self.on_update))
        self.client.on_disconnect(self.dashboard.live.watch_ticks(self.on_tick))
        self.client.on_disconnect(self.dashboard.live.watch_status(self.on_status))

    # ---------------------------------------------------------------- live
    async def on_update(self, update: Any) -> None:
        if update.portfolio_id != self.portfolio_id:
            return
        with self.client:
            await self.reload(update.version)
            if update.reason != "transaction_recorded":
                await self.load_chart()

    async def on_tick(self, _: Any) -> None:
        with self.client:
            await self.reload()
            await self.load_chart()

    async def on_status(self, connected: bool) -> None:
        if connected:  # catch up on what happened while the feed was down
            with self.client:
                await self.reload()
                await self.load_chart()

    # ---------------------------------------------------------------- data
    async def reload(self, at_least: int | None = None) -> None:
        try:
            self.view = await self.gateway.portfolio(self.portfolio_id, at_least)
            transactions = await self.gateway.transactions(self.portfolio_id)
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        self.title.text = self.view["name"]
        self.render_cards()
        self.donut.options.clear()
        self.donut.options.update(self.donut_options())
        self.donut.update()
        self.table.rows = [self.row(t) for t in transactions]
        self.table.update()

    def render_cards(self) -> None:
        m = self.view["metrics"]
        cards = [
            ("Holdings", self.viewer.btc(m["holdings_btc"]), ""), ("Invested", fmt.usd(m["invested_usd"]), ""),
            ("Value", fmt.usd(m["current_value_usd"]), ""), ("Cost basis", fmt.usd(m["cost_basis_usd"]), ""),
            ("Average price", fmt.usd(m.get("average_price_usd")), ""),
            ("Realized", fmt.usd(m["realized_pnl_usd"], True), tone(m["realized_pnl_usd"])),
            ("Unrealized", fmt.usd(m["unrealized_pnl_usd"], True), tone(m["unrealized_pnl_usd"])),
            ("Net result", fmt.usd(m["net_result_usd"], True), tone(m["net_result_usd"])),
            ("ROI", fmt.pct(m.get("roi_pct")), tone(m.get("roi_pct"))),
            ("TWR", fmt.pct(m.get("twr_pct")), tone(m.get("twr_pct"))),
            ("IRR (annual)", fmt.pct(m.get("irr_pct")), tone(m.get("irr_pct"))),
            ("Max drawdown", fmt.pct(m.get("max_drawdown_pct"), signed=False), ""),
        ]
        self.cards.clear()
        with self.cards:
            for label, value, css in cards:
                with ui.card().classes("p-3").mark(f"metric-{label.lower().replace(' ', '-')}"):
                    ui.label(label).classes("metric-label")
                    ui.label(value).classes(f"metric-value {css}")
        price = m.get("latest_price_usd")
        with self.cards:
            ui.label(f"BTC {fmt.usd(price)} · as of {fmt.local_time(m.get('priced_until'), self.zone)}"
                     if price else "No market price yet").classes("text-xs opacity-60 col-span-full")

    async def refresh(self) -> None:
        await self.reload()
        await self.load_chart()

    def row(self, t: dict[str, Any]) -> dict[str, Any]:
        m = t.get("metrics") or {}
        buy = t["side"] == "buy"
        if t.get("transfer"):
            return self.transfer_row(t, m, buy)
        return {
            "transaction_id": t["transaction_id"], "status": t["status"],
            "failure": t.get("failure_detail") or t.get("failure_reason") or "",
            "at": fmt.local_time(t["at"], self.zone), "at_iso": t["at"], "side": t["side"],
            "amount": self.viewer.btc(t["amount_btc"]), "amount_raw": t["amount_btc"],
            "price": fmt.usd(t.get("price_usd")), "price_raw": t.get("price_usd") if t.get("price_source") == "user"
            else None, "fee": fmt.usd(t["fee_usd"]), "fee_raw": t["fee_usd"], "note": t.get("note") or "",
            "flow": fmt.usd(m.get("cost_usd") if buy else m.get("proceeds_usd")),
            "value": fmt.usd(m.get("current_value_usd")) if buy else "—",
            "result": fmt.usd(m.get("net_result_usd") if buy else m.get("realized_pnl_usd"), True),
            "roi": fmt.pct(m.get("roi_pct")) if buy else "—",
        }

    def transfer_row(self, t: dict[str, Any], m: dict[str, Any], arrived: bool) -> dict[str, Any]:
        """A side of a transfer: its moved cost in the cost column, no realized result."""
        fee = t.get("fee_btc") or "0"
        sent = format(Decimal(t["amount_btc"]) + Decimal(fee), "f") if arrived else t["amount_btc"]
        return {
            "transaction_id": t["transaction_id"], "transfer_id": t["transfer"]["transfer_id"],
            "status": t["status"], "failure": t.get("failure_detail") or t.get("failure_reason") or "",
            "at": fmt.local_time(t["at"], self.zone), "at_iso": t["at"],
            "side": "moved in" if arrived else "moved out", "amount": self.viewer.btc(t["amount_btc"]),
            "amount_raw": t["amount_btc"], "sent_raw": sent, "fee_btc_raw": fee, "fee_raw": "0",
            "price": fmt.usd(t.get("price_usd")), "fee": f"{fee} BTC", "note": t.get("note") or "",
            "flow": fmt.usd(m.get("moved_cost_usd")),
            "value": fmt.usd(m.get("current_value_usd")) if arrived else "—",
            "result": fmt.usd(m.get("net_result_usd"), True) if arrived else "—",
            "roi": fmt.pct(m.get("roi_pct")) if arrived else "—",
        }

    def columns(self) -> list[dict[str, Any]]:
        names = [("at", "Time"), ("side", "Side"), ("amount", "Amount"), ("price", "Price"), ("fee", "Fee"),
                 ("flow", "Cost / proceeds"), ("value", "Value"), ("result", "Net / realized"), ("roi", "ROI"),
                 ("status", "Status"), ("note", "Note"), *([("actions", "")] if self.viewer.can_write else [])]
        return [{"name": key, "label": label, "field": key, "align": "left"} for key, label in names]

    # ---------------------------------------------------------------- chart
    def set_range(self, name: str) -> None:
        self.range = name
        ui.timer(0, self.load_chart, once=True)

    def range_start(self) -> tuple[str | None, str]:
        end_text = self.view["metrics"].get("priced_until")
        end = datetime.fromisoformat(end_text) if end_text else datetime.now(UTC)
        starts = {"1W": (end - timedelta(days=7), "hour"), "1M": (end - timedelta(days=30), "hour"),
                  "YTD": (end.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0), "day"),
                  "1Y": (end - timedelta(days=365), "day")}
        if self.range in starts:
            start, interval = starts[self.range]
            return start.isoformat(), interval
        return None, "day"

    async def load_chart(self) -> None:
        if not self.view["metrics"]["transaction_count"]:
            return
        start, interval = self.range_start()
        try:
            history = await self.gateway.history(self.portfolio_id, start, interval)
        except GatewayError as error:
            ui.notify(error.message, type="warning")
            return
        self.chart.options.clear()
        self.chart.options.update(self.chart_options(history["points"]))
        self.chart.update()

    @staticmethod
    def chart_options(points: list[dict[str, Any]]) -> dict[str, Any]:
        # floats only for drawing; every figure shown as text stays Decimal
        value = [[p["at"], float(Decimal(p["value_usd"]))] for p in points if p["value_usd"] is not None]
        invested = [[p["at"], float(Decimal(p["invested_usd"]))] for p in points]
        return {
            "tooltip": {"trigger": "axis"}, "legend": {"data": ["Value", "Invested"], "top": 0},
            "grid": {"left": 60, "right": 20, "top": 36, "bottom": 30},
            "xAxis": {"type": "time"}, "yAxis": {"type": "value", "scale": True},
            "series": [
                {"name": "Value", "type": "line", "showSymbol": False, "data": value, "areaStyle": {"opacity": .12},
                 "lineStyle": {"color": "#f7931a"}, "itemStyle": {"color": "#f7931a"}},
                {"name": "Invested", "type": "line", "step": "end", "showSymbol": False, "data": invested,
                 "lineStyle": {"color": "#64748b", "type": "dashed"}, "itemStyle": {"color": "#64748b"}},
            ],
        }

    def donut_options(self) -> dict[str, Any]:
        m = self.view.get("metrics", {})
        progress = Decimal(m["goal_progress_pct"]) if m.get("goal_progress_pct") else None
        done = float(min(progress, Decimal(100))) if progress is not None else 0.0
        label = fmt.pct(progress, signed=False) if progress is not None else "No goal"
        return {"series": [{"type": "pie", "radius": ["62%", "82%"], "avoidLabelOverlap": False,
                            "label": {"show": True, "position": "center", "formatter": label, "fontSize": 18},
                            "data": [{"value": done, "itemStyle": {"color": GREEN}},
                                     {"value": 100 - done, "itemStyle": {"color": "#e2e8f0"}}]}]}

    # ---------------------------------------------------------------- actions
    async def change_method(self, event: Any) -> None:
        if event.value == self.view["cost_basis_method"]:
            return
        try:
            self.view = await self.gateway.update_portfolio(self.portfolio_id, cost_basis_method=event.value)
        except GatewayError as error:
            ui.notify(error.message, type="negative")
        await self.reload()

    async def save_goal(self, text: str) -> None:
        try:
            await self.gateway.update_portfolio(self.portfolio_id, goal_usd=text.strip() or None)
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        await self.reload()

    def trade_dialog(self, row: dict[str, Any] | None = None) -> None:
        editing = row is not None
        stored = TradeForm.of_transaction(row, self.zone) if row is not None else TradeForm()
        action = UserAction()  # one key for this dialog's Save, however often it is clicked
        with ui.dialog() as dialog, ui.card().classes("w-full max-w-md"):
            ui.label("Edit trade" if editing else "Add trade").classes("text-lg font-semibold")
            side = ui.toggle({"buy": "Buy", "sell": "Sell"}, value=row["side"] if row is not None else "buy")
            side.set_enabled(not editing)
            amount = amount_input("Amount (BTC)", stored.amount).mark("trade-amount")
            when = time_input(self.zone, stored.when).mark("trade-at")
            fee = amount_input("Fee (USD, optional)", stored.fee)
            price = amount_input("Price (USD, optional: leave empty for the market price)", stored.price)
            note = ui.input("Note", value=stored.note).props("outlined").classes("w-full").mark("trade-note")
            inputs = {"amount_btc": amount, "at": when, "fee_usd": fee, "price_usd": price, "note": note}

            async def save() -> None:
                if not when.value:
                    when.props('error error-message="Choose when the trade happened."')
                    return
                entered = TradeForm(amount=amount.value or "", when=when.value, fee=fee.value or "",
                                    price=price.value or "", note=note.value or "")
                try:
                    if row is not None:
                        changes = changed_fields(stored, entered, self.zone)
                        if changes:
                            await self.gateway.edit(self.portfolio_id, row["transaction_id"], changes, action)
                    else:
                        await self.gateway.record(self.portfolio_id,
                                                  {"side": side.value, **entered.new_trade(self.zone)}, action)
                except GatewayError as error:
                    field_errors(error, inputs)
                    return
                dialog.close()
                await self.reload()
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                ui.button("Save", on_click=save).props("unelevated color=primary").mark("save-trade")
        dialog.open()

    async def remove(self, row: dict[str, Any]) -> None:
        if not await confirm(f"Delete the {row['side']} of {row['amount']} on {row['at']}?"):
            return
        try:
            await self.gateway.delete_transaction(self.portfolio_id, row["transaction_id"])
        except GatewayError as error:
            ui.notify(error.message, type="negative", multi_line=True)
        await self.reload()
        await self.load_chart()

    async def export(self) -> None:
        try:
            filename, content = await self.gateway.export_csv(self.portfolio_id)
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        ui.download.content(content, filename, "text/csv")

    def import_dialog(self) -> None:
        upload: dict[str, Any] = {}
        action = UserAction()  # a retried Import reuses its key, so the rows are saved once
        with ui.dialog() as dialog, ui.card().classes("w-full max-w-3xl"):
            ui.label("Import transactions").classes("text-lg font-semibold")
            exchanges = ", ".join(title for name, title in IMPORT_FORMATS.items() if name != "generic")
            ui.label("CSV with the columns side,amount_btc,at,fee_usd,price_usd,note, or the export of one of "
                     f"these exchanges: {exchanges}. You will see a preview first.").classes(
                "text-sm opacity-70").mark("import-formats")
            preview = ui.column().classes("w-full")
            buttons = ui.row().classes("w-full justify-end")

            async def run(dry_run: bool, skip_invalid: bool = False) -> dict[str, Any] | None:
                try:
                    return await self.gateway.import_csv(self.portfolio_id, upload["name"], upload["content"],
                                                         dry_run, skip_invalid, action)
                except GatewayError as error:
                    ui.notify(error.message, type="negative")
                    return None

            async def received(event: Any) -> None:
                upload["name"], upload["content"] = event.file.name, await event.file.read()
                report = await run(dry_run=True)
                if report is None:
                    return
                errors = [r for r in report["rows"] if not r["ok"] and not r.get("skipped")]
                preview.clear()
                buttons.clear()
                with preview:
                    file_format = IMPORT_FORMATS.get(report["format"], report["format"])
                    ui.label(f"{file_format} file: {report['valid_rows']} of {report['total_rows']} rows are "
                             f"ready to import, {len(errors)} have errors.").mark("import-summary")
                    ui.table(columns=[{"name": k, "label": k.capitalize(), "field": k, "align": "left"}
                                      for k in ("line", "result")],
                             rows=[{"line": r["line"], "result": (r.get("error") or "") if not r["ok"] else
                                    f"{r['side']} {self.viewer.btc(r['amount_btc'])} at {fmt.local_time(r['at'], self.zone)}"}
                                   for r in report["rows"]]).props("dense flat").classes("w-full max-h-72")
                with buttons:
                    ui.button("Cancel", on_click=dialog.close).props("flat")

                    async def commit(skip: bool) -> None:
                        done = await run(dry_run=False, skip_invalid=skip)
                        if done is not None:
                            ui.notify(f"Imported {done['imported']} transactions.", type="positive")
                            dialog.close()
                            await self.reload()
                    if errors:
                        ui.button("Import the valid rows only", on_click=lambda: commit(True)).props("outline")
                    else:
                        ui.button("Import", on_click=lambda: commit(False)).props("unelevated color=primary")
            ui.upload(on_upload=received, auto_upload=True, max_file_size=5_000_000).props(
                "accept=.csv flat bordered").classes("w-full")
        dialog.open()


