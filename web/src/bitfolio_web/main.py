"""Wires the dashboard: settings, the live-update feed, the pages, and NiceGUI's server."""

from contracts.observability import configure_logging
from nicegui import app, ui

from bitfolio_web.pages import Dashboard, register_pages
from bitfolio_web.settings import Settings


def run(settings: Settings) -> None:
    configure_logging("web", settings.log_level)
    dashboard = Dashboard(settings)
    register_pages(dashboard)
    app.on_startup(dashboard.live.start)
    app.on_shutdown(dashboard.live.stop)
    app.on_shutdown(dashboard.http.aclose)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    ui.run(host=settings.http_host, port=settings.http_port, title="Bitfolio", storage_secret=settings.storage_secret,
           reload=False, show=False, favicon="₿", dark=None)
