"""The "Move BTC" dialog: a transfer to another of the user's portfolios, or an edit of one."""

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from bitfolio_web.form_inputs import amount_input, field_errors, time_input
from bitfolio_web.gateway_client import GatewayClient, GatewayError, UserAction
from bitfolio_web.trade_form import TradeForm, changed_fields


async def open_transfer_dialog(gateway: GatewayClient, portfolio_id: str, zone: str,
                               done: Callable[[], Awaitable[None]], row: dict[str, Any] | None = None) -> None:
    """A new transfer out of `portfolio_id` (destination, amount, time, fee in BTC, note), or, given a table row of
    a transfer, that transfer's amount, time, fee and note (both portfolios change)."""
    editing = row is not None
    stored = TradeForm.of_transaction(row, zone) if row is not None else TradeForm()
    if row is not None:  # a transfer's fee is BTC, and its amount is what was sent
        stored = TradeForm(amount=row["sent_raw"], when=stored.when, fee=row["fee_btc_raw"], note=stored.note)
    others: dict[str, str] = {}
    if not editing:
        try:
            others = {p["portfolio_id"]: p["name"] for p in await gateway.portfolios()
                      if p["portfolio_id"] != portfolio_id}
        except GatewayError as error:
            ui.notify(error.message, type="negative")
            return
        if not others:
            ui.notify("Create another portfolio first: BTC moves between two of your portfolios.", type="warning")
            return
    action = UserAction()  # one key for this dialog's Save, however often it is clicked
    with ui.dialog() as dialog, ui.card().classes("w-full max-w-md"):
        ui.label("Edit transfer" if editing else "Move BTC").classes("text-lg font-semibold")
        destination = None
        if not editing:
            destination = ui.select(others, value=next(iter(others)), label="To portfolio").props(
                "outlined").classes("w-full").mark("transfer-to")
        amount = amount_input("Amount sent (BTC)", stored.amount).mark("transfer-amount")
        when = time_input(zone, stored.when).mark("transfer-at")
        fee = amount_input("Network fee (BTC, optional: lost on the way)", stored.fee)
        note = ui.input("Note", value=stored.note).props("outlined").classes("w-full")
        inputs = {"amount_btc": amount, "at": when, "fee_btc": fee, "note": note}
        if destination is not None:
            inputs["to_portfolio_id"] = destination  # type: ignore[assignment]

        async def save() -> None:
            if not when.value:
                when.props('error error-message="Choose when the BTC moved."')
                return
            entered = TradeForm(amount=amount.value or "", when=when.value, fee=fee.value or "", note=note.value or "")
            try:
                if row is not None:
                    changes = changed_fields(stored, entered, zone)
                    if "fee_usd" in changes:
                        changes["fee_btc"] = changes.pop("fee_usd")
                    if changes:
                        await gateway.edit_transfer(portfolio_id, row["transfer_id"], changes, action)
                else:
                    body = entered.new_trade(zone)
                    body["fee_btc"] = body.pop("fee_usd")
                    await gateway.transfer(portfolio_id, {"to_portfolio_id": destination.value, **body},  # type: ignore[union-attr]
                                           action)
            except GatewayError as error:
                field_errors(error, inputs)
                return
            dialog.close()
            await done()
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Move" if not editing else "Save", on_click=save).props("unelevated color=primary").mark(
                "save-transfer")
    dialog.open()
