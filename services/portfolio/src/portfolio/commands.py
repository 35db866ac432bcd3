"""One function per command: load the portfolio, check it with the domain, append its events, update the projection."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from contracts.envelope import Message
from contracts.portfolios import (
    CreatePortfolio,
    DeletePortfolio,
    DeleteTransaction,
    DeleteTransfer,
    EditTransaction,
    EditTransfer,
    ImportReport,
    ImportRowResult,
    ImportTransactions,
    OwnedCommand,
    RecordTransaction,
    RecordTransfer,
    RenamePortfolio,
    SetCostBasisMethod,
    SetPortfolioGoal,
)
from contracts.prices import CANDLE_OPEN, MAX_PRICES_PER_REQUEST, PriceRequested, WantedPrice

from portfolio.domain import (
    DomainError,
    InvalidTransaction,
    ParsedRow,
    RowError,
    RowSkipped,
    Trade,
    check_holdings,
    check_new_sell,
    parse_transactions_csv,
    refuse_oversized_sells,
    validate_amount,
    validate_fee,
    validate_price,
    validate_time,
)
from portfolio.domain import events as ev
from portfolio.domain.events import PortfolioState, TransactionState
from portfolio.projection import (
    commit_events,
    load_owned,
    price_request,
    refresh_metrics,
    transaction_result,
    updated_event,
)
from portfolio.service import Outcome, PortfolioService, transaction_not_found
from portfolio.transfer_commands import delete_transfer, edit_transfer, record_transfer, remove_transfer
from portfolio.unit_of_work import UnitOfWork


async def create_portfolio(service: PortfolioService, uow: UnitOfWork, command: CreatePortfolio
                           ) -> Outcome:
    if command.goal_usd is not None and command.goal_usd <= 0:
        raise DomainError("The goal must be a positive amount of USD.", {"field": "goal_usd"})
    portfolio_id = uuid4().hex
    created = ev.PortfolioCreated(portfolio_id, command.owner_id, command.name.strip(), command.cost_basis_method,
                                  command.goal_usd)
    now = datetime.now(UTC)
    state = ev.apply_event(None, created, now)
    await commit_events(uow, state, [created], command, at=now)
    metrics = await refresh_metrics(service, uow, state, priced_changed=False)
    event = updated_event(state, metrics, command, "portfolio_created")
    return Outcome(event.portfolio, [event])


async def change_portfolio(service: PortfolioService, uow: UnitOfWork, command: OwnedCommand,
                           portfolio_id: str, event: ev.DomainEvent, reason: str) -> Outcome:
    state = await load_owned(uow, command, portfolio_id)
    method_before = state.method
    await commit_events(uow, state, [event], command)
    if state.deleted:
        return Outcome(None, [updated_event(state, None, command, reason)])
    metrics = await refresh_metrics(service, uow, state, priced_changed=state.method != method_before)
    update = updated_event(state, metrics, command, reason)
    return Outcome(update.portfolio, [update])


async def rename_portfolio(service: PortfolioService, uow: UnitOfWork, command: RenamePortfolio
                           ) -> Outcome:
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  ev.PortfolioRenamed(command.name.strip()), "portfolio_renamed")


async def set_goal(service: PortfolioService, uow: UnitOfWork, command: SetPortfolioGoal) -> Outcome:
    if command.goal_usd is not None and command.goal_usd <= 0:
        raise DomainError("The goal must be a positive amount of USD.", {"field": "goal_usd"})
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  ev.PortfolioGoalSet(command.goal_usd), "goal_set")


async def set_method(service: PortfolioService, uow: UnitOfWork, command: SetCostBasisMethod
                     ) -> Outcome:
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  ev.CostBasisMethodChanged(command.cost_basis_method),
                                  "cost_basis_method_changed")


async def delete_portfolio(service: PortfolioService, uow: UnitOfWork, command: DeletePortfolio
                           ) -> Outcome:
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  ev.PortfolioDeleted(), "portfolio_deleted")


# ------------------------------------------------------------------ transaction commands


def recorded(transaction_id: str, sequence: int, command: RecordTransaction | ParsedRow,
             request_id: str | None) -> ev.TransactionRecorded:
    return ev.TransactionRecorded(transaction_id, sequence, command.side, command.amount_btc, command.at,
                                  command.fee_usd, command.price_usd, command.note, request_id)


async def record_transaction(service: PortfolioService, uow: UnitOfWork, command: RecordTransaction
                             ) -> Outcome:
    validate_amount(command.amount_btc)
    validate_time(command.at, service.clock())
    validate_fee(command.fee_usd)
    validate_price(command.price_usd)
    state = await load_owned(uow, command, command.portfolio_id)
    transaction_id, sequence = uuid4().hex, state.next_sequence
    known = (await known_market_price(service, uow, command.at) if command.price_usd is None
             and extends_ledger(uow, state, (command.at, sequence)) else None)
    new = Trade(transaction_id, command.side, command.amount_btc, command.at, command.fee_usd,
                command.price_usd if known is None else known[1], sequence)
    if command.side.value == "sell":
        check_new_sell(new, *await uow.repo.holdings_around(uow.connection, state.portfolio_id, new.timeline_key))
    request_id = None if command.price_usd is not None or known is not None else uuid4().hex
    events: list[ev.DomainEvent] = [recorded(transaction_id, sequence, command, request_id)]
    if known is not None:
        events.append(ev.TransactionPriced(transaction_id, known[1], known[0], CANDLE_OPEN))
    outgoing: list[Message] = []
    if request_id is None:  # priced already: its row is written with its figures, by the metrics
        await commit_events(uow, state, events, command)
        uow.defer_rows(state, [transaction_id])
        metrics = await refresh_metrics(service, uow, state, appended=new)
    else:
        await commit_events(uow, state, events, command, [transaction_id])
        metrics = await refresh_metrics(service, uow, state, priced_changed=False, only_counts=True)
        outgoing.append(price_request(state, transaction_id, command.at, request_id, command))
    reason = "transaction_priced" if known is not None else "transaction_recorded"
    outgoing.append(updated_event(state, metrics, command, reason, transaction_id))
    return Outcome(await transaction_result(uow, state, transaction_id), outgoing)


def extends_ledger(uow: UnitOfWork, state: PortfolioState, key: tuple[datetime, int]) -> bool:
    """Whether a trade at `key` would come after every trade the stored ledger has folded (an O(1) append). A
    back-dated trade is priced through price.requested instead: its answer waits in a window with the other
    back-dated answers of the portfolio, and the window is folded once (see messaging.WriteBatcher)."""
    stored = uow.stored.get(state.portfolio_id)
    if stored is None:
        return False
    last = stored.read_ledger().last_seen_key
    return last is None or key > last


async def all_known_prices(service: PortfolioService, uow: UnitOfWork, times: list[datetime]
                           ) -> dict[datetime, tuple[int, Decimal]]:
    """(hour, open) for every time when the replica knows them all, else none: an import is folded once, either
    now with every price or when the answer to its price request comes (never both)."""
    known = {}
    for at in times:
        price = await known_market_price(service, uow, at)
        if price is None:
            return {}
        known[at] = price
    return known


async def known_market_price(service: PortfolioService, uow: UnitOfWork, at: datetime) -> tuple[int, Decimal] | None:
    """(hour, open) when the replica of hourly opens knows the finished candle of `at`, else None (ask for it)."""
    if service.hours is None:
        return None
    market = await uow.market()
    return service.hours.price_at(at, market.hour if market is not None else None)


async def load_transaction(uow: UnitOfWork, command: EditTransaction | DeleteTransaction
                           ) -> tuple[PortfolioState, TransactionState]:
    """The owner's portfolio, locked, with the transaction the command names (or NotFound)."""
    state = await load_owned(uow, command, command.portfolio_id, [command.transaction_id])
    tx = state.transactions.get(command.transaction_id)
    if tx is None:
        raise transaction_not_found(command.transaction_id)
    return state, tx


async def edit_transaction(service: PortfolioService, uow: UnitOfWork, command: EditTransaction
                           ) -> Outcome:
    state, tx = await load_transaction(uow, command)
    if tx.transfer_id is not None:
        raise InvalidTransaction("transaction_id", "This is one side of a transfer: change it with PATCH "
                                 f"/v1/portfolios/{state.portfolio_id}/transfers/{tx.transfer_id}.")
    if command.amount_btc is not None:
        validate_amount(command.amount_btc)
    new_at = validate_time(command.at, service.clock()) if command.at is not None else None
    if command.fee_usd is not None:
        validate_fee(command.fee_usd)
    validate_price(command.price_usd)
    new_time = command.at is not None and command.at != tx.at
    needs_market_price = command.price_usd is None and (
        command.clear_price or (new_time and tx.price_source != "user") or tx.status.value == "failed")
    request_id = uuid4().hex if needs_market_price else None
    at = command.at or tx.at
    edited = Trade(tx.transaction_id, tx.side, command.amount_btc or tx.amount_btc, at, tx.fee_usd, None,
                   tx.sequence)
    timeline = [t for t in await uow.repo.holdings_timeline(uow.connection, state.portfolio_id)
                if t.transaction_id != tx.transaction_id]
    check_holdings([*timeline, edited])
    event = ev.TransactionEdited(tx.transaction_id, command.amount_btc, new_at, command.fee_usd, command.price_usd,
                                 command.note, "note" in command.model_fields_set, request_id)
    changed_from = min((tx.at, tx.sequence), edited.timeline_key)
    await commit_events(uow, state, [event], command, [tx.transaction_id])
    metrics = await refresh_metrics(service, uow, state, changed_from=changed_from)
    outgoing: list[Message] = []
    if request_id is not None:
        outgoing.append(price_request(state, tx.transaction_id, at, request_id, command))
    outgoing.append(updated_event(state, metrics, command, "transaction_edited", tx.transaction_id))
    return Outcome(await transaction_result(uow, state, tx.transaction_id), outgoing)


async def delete_transaction(service: PortfolioService, uow: UnitOfWork, command: DeleteTransaction
                             ) -> Outcome:
    state, gone = await load_transaction(uow, command)
    if gone.transfer_id is not None:  # one side of a transfer: both go
        return await remove_transfer(service, uow, command, state.portfolio_id, gone.transfer_id)
    check_holdings([t for t in await uow.repo.holdings_timeline(uow.connection, state.portfolio_id)
                    if t.transaction_id != command.transaction_id])
    await commit_events(uow, state, [ev.TransactionDeleted(command.transaction_id)], command,
                        [command.transaction_id])
    metrics = await refresh_metrics(service, uow, state, changed_from=(gone.at, gone.sequence))
    return Outcome(None, [updated_event(state, metrics, command, "transaction_deleted", command.transaction_id)])


async def import_transactions(service: PortfolioService, uow: UnitOfWork,
                              command: ImportTransactions) -> Outcome:
    state = await load_owned(uow, command, command.portfolio_id)
    file_format, parsed = parse_transactions_csv(command.csv_text, service.clock())
    good = [row for row in parsed if isinstance(row, ParsedRow)]
    results: dict[int, ImportRowResult] = {}
    for row in parsed:
        if isinstance(row, RowError):
            results[row.line] = ImportRowResult(line=row.line, ok=False, error=row.message)
        elif isinstance(row, RowSkipped):
            results[row.line] = ImportRowResult(line=row.line, ok=False, skipped=True, error=row.reason)
    # holdings: a sell that exceeds what is held at its time (with the rows before it) is a row error too
    timeline = await uow.repo.holdings_timeline(uow.connection, state.portfolio_id)
    candidates = [(row, Trade(f"line-{row.line}", row.side, row.amount_btc, row.at, row.fee_usd, row.price_usd,
                              state.next_sequence + offset))
                  for offset, row in enumerate(sorted(good, key=lambda r: (r.at, r.line)))]
    refused = refuse_oversized_sells(timeline, [trade for _, trade in candidates])
    accepted: list[tuple[ParsedRow, Trade]] = []
    for row, trade in candidates:
        if trade.transaction_id in refused:
            results[row.line] = ImportRowResult(line=row.line, ok=False, error=refused[trade.transaction_id].message)
        else:
            accepted.append((row, trade))
    errors = sum(1 for r in results.values() if not r.ok and not r.skipped)
    save = not command.dry_run and (errors == 0 or command.skip_invalid) and accepted
    events: list[ev.DomainEvent] = []
    outgoing: list[Message] = []
    ids, priced = [], []
    wanted: list[WantedPrice] = []
    known_prices = await all_known_prices(service, uow, [row.at for row, _ in accepted if row.price_usd is None])
    for row, trade in accepted:
        transaction_id = uuid4().hex if save else None
        results[row.line] = ImportRowResult(
            line=row.line, ok=True, side=row.side, amount_btc=row.amount_btc, at=row.at, fee_usd=row.fee_usd,
            price_usd=row.price_usd, note=row.note, transaction_id=transaction_id)
        if save and transaction_id:
            known = known_prices.get(row.at) if row.price_usd is None else None
            request_id = None if row.price_usd is not None or known is not None else uuid4().hex
            events.append(recorded(transaction_id, trade.sequence, row, request_id))
            ids.append(transaction_id)
            if known is not None:
                events.append(ev.TransactionPriced(transaction_id, known[1], known[0], CANDLE_OPEN))
            if request_id:
                wanted.append(WantedPrice(request_id=request_id, transaction_id=transaction_id, at=row.at))
            else:
                priced.append(trade.timeline_key)
    # one message asks for every market price of the file (a few for a very large one)
    outgoing += [PriceRequested.batch(state.portfolio_id, wanted[start:start + MAX_PRICES_PER_REQUEST],
                                      **command.caused())
                 for start in range(0, len(wanted), MAX_PRICES_PER_REQUEST)]
    if events:
        await commit_events(uow, state, events, command, ids)
        metrics = await refresh_metrics(service, uow, state, priced_changed=bool(priced),
                                        changed_from=min(priced, default=None))
        outgoing.append(updated_event(state, metrics, command, "transactions_imported"))
    report = ImportReport(format=file_format, dry_run=command.dry_run, total_rows=len(parsed),
                          valid_rows=len(accepted), imported=len(ids),
                          rows=[results[line] for line in sorted(results)])
    return Outcome(report, outgoing)


WRITES: dict[type[OwnedCommand], Callable[..., Awaitable[Outcome]]] = {
    CreatePortfolio: create_portfolio, RenamePortfolio: rename_portfolio, SetPortfolioGoal: set_goal,
    SetCostBasisMethod: set_method, DeletePortfolio: delete_portfolio, RecordTransaction: record_transaction,
    EditTransaction: edit_transaction, DeleteTransaction: delete_transaction, ImportTransactions: import_transactions,
    RecordTransfer: record_transfer, EditTransfer: edit_transfer, DeleteTransfer: delete_transfer,
}
