"""Inputs the dashboard's dialogs share, and the API's field errors shown beside them."""

from nicegui import ui

from bitfolio_web.gateway_client import GatewayError


def amount_input(label: str, value: str) -> ui.input:
    """A decimal typed as text (money and BTC travel as strings, never floats)."""
    return ui.input(label, value=value).props("outlined inputmode=decimal").classes("w-full")


def time_input(zone: str, value: str) -> ui.input:
    """A minute in the browser's own time zone."""
    return ui.input(f"Date and time ({zone})", value=value).props("outlined type=datetime-local").classes("w-full")


def field_errors(error: GatewayError, inputs: dict[str, ui.input]) -> None:
    """Show the API's messages next to the inputs they concern, or as a notification."""
    by_field = error.field_messages()
    shown = False
    for name, element in inputs.items():
        message = by_field.get(name)
        element.props(f'error error-message="{message}"' if message else "error=false")
        shown = shown or bool(message)
    if not shown:
        ui.notify(error.message, type="negative", multi_line=True)
