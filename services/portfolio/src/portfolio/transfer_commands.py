"""Transfer commands: both portfolios locked, each side's events appended to its own stream, both projections updated."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import uuid4

from contracts.envelope import Message
from contracts.portfolios import DeleteTransfer, EditTransfer, OwnedCommand, RecordTransfer, Side, TransactionKind

from portfolio.domain import InvalidTransaction, NotFound, Trade, check_holdings, validate_amount, validate_time
from portfolio.domain import events as ev
from portfolio.domain.events import PortfolioState, TransactionState
from portfolio.domain.transfers import validate_transfer_fee, waiting_arrival
from portfolio.projection import commit_events, price_request, refresh_metrics, transaction_result, updated_event
from portfolio.service import Outcome, PortfolioService, not_found
from portfolio.unit_of_work import UnitOfWork


async def lock_both(uow: UnitOfWork, owner_id: str, wanted: dict[str, list[str]]) -> dict[str, PortfolioState]:
    """The owner's portfolios (id → the transactions to load), locked in id order so that two transfers in
    opposite directions never wait on each other; a missing one is left out."""
    states = {}
    for portfolio_id in sorted(wanted):
        state = await uow.repo.load_state(uow.connection, portfolio_id, owner_id, wanted[portfolio_id],
                                          stored=uow.stored)
        if state is not None:
            states[portfolio_id] = state
    return states


async def timeline_without(uow: UnitOfWork, portfolio_id: str, transaction_id: str) -> list[Trade]:
    return [t for t in await uow.repo.holdings_timeline(uow.connection, portfolio_id) if t.transaction_id != transaction_id]


async def record_transfer(service: PortfolioService, uow: UnitOfWork, command: RecordTransfer) -> Outcome:
    amount = validate_amount(command.amount_btc)
    fee = validate_transfer_fee(command.fee_btc, amount)
    at = validate_time(command.at, service.clock())
    if command.to_portfolio_id == command.portfolio_id:
        raise InvalidTransaction("to_portfolio_id", "A transfer moves BTC to another portfolio; choose a different "
                                                    "destination.")
    states = await lock_both(uow, command.owner_id, {command.portfolio_id: [], command.to_portfolio_id: []})
    for portfolio_id in (command.portfolio_id, command.to_portfolio_id):
        if portfolio_id not in states:
            raise not_found(portfolio_id)
    source, destination = states[command.portfolio_id], states[command.to_portfolio_id]
    out_id, in_id, transfer_id, request_id = (uuid4().hex for _ in range(4))
    leaving = Trade(out_id, Side.SELL, amount, at, fee, None, source.next_sequence, TransactionKind.TRANSFER_OUT)
    check_holdings([*await uow.repo.holdings_timeline(uow.connection, source.portfolio_id), leaving])
    sent = ev.TransferSent(out_id, transfer_id, source.next_sequence, amount, fee, at, command.note,
                           destination.portfolio_id, in_id, request_id)
    received = ev.TransferReceived(in_id, transfer_id, destination.next_sequence, amount - fee, fee, at,
                                   command.note, source.portfolio_id, out_id)
    await commit_events(uow, source, [sent], command, [out_id])
    await commit_events(uow, destination, [received], command, [in_id])
    outgoing: list[Message] = [price_request(source, out_id, at, request_id, command)]
    for state, transaction_id in ((destination, in_id), (source, out_id)):
        metrics = await refresh_metrics(service, uow, state, priced_changed=False, only_counts=True)
        outgoing.append(updated_event(state, metrics, command, "transfer_recorded", transaction_id))
    return Outcome(await transaction_result(uow, source, out_id), outgoing)


@dataclass
class TransferSides:
    """A transfer's two sides, locked; a side whose portfolio was deleted is None."""

    source: PortfolioState | None
    sent: TransactionState | None
    destination: PortfolioState | None
    received: TransactionState | None

    def present(self) -> list[tuple[PortfolioState, TransactionState]]:
        """The sides that still exist, the destination first (it is checked before the source changes)."""
        return [(state, tx) for state, tx in ((self.destination, self.received), (self.source, self.sent))
                if state is not None and tx is not None]


async def load_transfer(uow: UnitOfWork, command: OwnedCommand, portfolio_id: str, transfer_id: str) -> TransferSides:
    """Both sides of a transfer of `portfolio_id`, locked in id order. NotFound when this portfolio is not the
    owner's or has no such transfer."""
    here = await uow.repo.transfer_side(uow.connection, portfolio_id, transfer_id)
    if here is None:
        raise NotFound(f"No transfer {transfer_id} was found in this portfolio.", {"transfer_id": transfer_id})
    ids = {portfolio_id: here["transaction_id"], here["counterpart_portfolio_id"]: here["counterpart_transaction_id"]}
    states = await lock_both(uow, command.owner_id, {pid: [tx] for pid, tx in ids.items()})
    if portfolio_id not in states:
        raise not_found(portfolio_id)
    sending = here["kind"] == TransactionKind.TRANSFER_OUT
    source_id, destination_id = ((portfolio_id, here["counterpart_portfolio_id"]) if sending
                                 else (here["counterpart_portfolio_id"], portfolio_id))
    source, destination = states.get(source_id), states.get(destination_id)
    return TransferSides(source, source.transactions.get(ids[source_id]) if source else None,
                         destination, destination.transactions.get(ids[destination_id]) if destination else None)


def key_of(tx: TransactionState) -> tuple[datetime, int]:
    return (tx.at, tx.sequence)


async def edit_transfer(service: PortfolioService, uow: UnitOfWork, command: EditTransfer) -> Outcome:
    sides = await load_transfer(uow, command, command.portfolio_id, command.transfer_id)
    source, out_tx, destination, in_tx = sides.source, sides.sent, sides.destination, sides.received
    if source is None or out_tx is None or destination is None or in_tx is None:
        raise NotFound("The other portfolio of this transfer was deleted, so the transfer can't change; delete it "
                       "instead.", {"transfer_id": command.transfer_id})
    amount = validate_amount(command.amount_btc) if command.amount_btc is not None else out_tx.amount_btc
    fee = validate_transfer_fee(command.fee_btc if command.fee_btc is not None else out_tx.fee_btc or Decimal(0),
                                amount)
    at = validate_time(command.at, service.clock()) if command.at is not None else out_tx.at
    leaving = Trade(out_tx.transaction_id, Side.SELL, amount, at, out_tx.fee_usd, None, out_tx.sequence,
                    TransactionKind.TRANSFER_OUT)
    check_holdings([*await timeline_without(uow, source.portfolio_id, out_tx.transaction_id), leaving])
    arriving = Trade(in_tx.transaction_id, Side.BUY, amount - fee, at, in_tx.fee_usd, None, in_tx.sequence,
                     TransactionKind.TRANSFER_IN)
    check_holdings([*await timeline_without(uow, destination.portfolio_id, in_tx.transaction_id), arriving])
    new_at = at if at != out_tx.at else None
    request_id = uuid4().hex if new_at is not None or out_tx.status.value == "failed" else None
    note, note_changed = command.note, "note" in command.model_fields_set
    keys = {out_tx.transaction_id: min(key_of(out_tx), (at, out_tx.sequence)),
            in_tx.transaction_id: min(key_of(in_tx), (at, in_tx.sequence))}
    # the destination waits until the source's ledger counts the changed transfer (sync_arrivals)
    await commit_events(uow, destination, [
        ev.TransactionEdited(in_tx.transaction_id, amount - fee, new_at, note=note, note_changed=note_changed,
                             fee_btc=fee),
        ev.TransferLotsSet(in_tx.transaction_id, waiting_arrival())], command, [in_tx.transaction_id])
    await commit_events(uow, source, [
        ev.TransactionEdited(out_tx.transaction_id, amount, new_at, note=note, note_changed=note_changed,
                             price_request_id=request_id, fee_btc=fee)], command, [out_tx.transaction_id])
    outgoing: list[Message] = []
    if request_id is not None:
        outgoing.append(price_request(source, out_tx.transaction_id, at, request_id, command))
    for state, tx in ((destination, in_tx), (source, out_tx)):
        metrics = await refresh_metrics(service, uow, state, changed_from=keys[tx.transaction_id])
        outgoing.append(updated_event(state, metrics, command, "transfer_edited", tx.transaction_id))
    here = out_tx if command.portfolio_id == source.portfolio_id else in_tx
    return Outcome(await transaction_result(uow, source if here is out_tx else destination, here.transaction_id),
                   outgoing)


async def delete_transfer(service: PortfolioService, uow: UnitOfWork, command: DeleteTransfer) -> Outcome:
    return await remove_transfer(service, uow, command, command.portfolio_id, command.transfer_id)


async def remove_transfer(service: PortfolioService, uow: UnitOfWork, command: OwnedCommand, portfolio_id: str,
                          transfer_id: str) -> Outcome:
    """Delete both sides (a side whose portfolio was deleted has none left); refused when a sell of the
    destination needs what it received."""
    transfer = await load_transfer(uow, command, portfolio_id, transfer_id)
    if transfer.destination is not None and transfer.received is not None:
        check_holdings(await timeline_without(uow, transfer.destination.portfolio_id,
                                              transfer.received.transaction_id))
    sides = transfer.present()
    for state, tx in sides:
        await commit_events(uow, state, [ev.TransactionDeleted(tx.transaction_id)], command, [tx.transaction_id])
    outgoing: list[Message] = []
    for state, tx in sides:
        metrics = await refresh_metrics(service, uow, state, changed_from=key_of(tx))
        outgoing.append(updated_event(state, metrics, command, "transfer_deleted", tx.transaction_id))
    return Outcome(None, outgoing)
