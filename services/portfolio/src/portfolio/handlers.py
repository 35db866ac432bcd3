"""One function per command or event: load, call the domain, save events and projections, emit via the outbox."""

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias
from uuid import uuid4

import asyncpg
import structlog
from contracts.envelope import Message
from contracts.portfolios import (
    CreatePortfolio,
    DeletePortfolio,
    DeleteTransaction,
    EditTransaction,
    ExportFile,
    ExportTransactions,
    GetHistory,
    GetPortfolio,
    GetTransaction,
    History,
    HistoryPoint,
    ImportReport,
    ImportRowResult,
    ImportTransactions,
    Interval,
    ListPortfolios,
    ListTransactions,
    OwnedCommand,
    PortfolioList,
    PortfolioUpdated,
    PortfolioView,
    RecordTransaction,
    RenamePortfolio,
    SetCostBasisMethod,
    SetPortfolioGoal,
    Side,
    TransactionPage,
    TransactionStatus,
)
from contracts.prices import (
    MAX_PRICES_PER_REQUEST,
    PriceRequested,
    PriceResolved,
    PriceTicked,
    PriceUnavailable,
    ResolvedPrice,
    UnavailablePrice,
    WantedPrice,
)
from contracts.types import EARLIEST_TIME
from pydantic import BaseModel

from contracts import ErrorCode, Reply
from portfolio import repository as repo
from portfolio import views
from portfolio.domain import (
    CHECKPOINT_EVERY,
    Conflict,
    DomainError,
    Ledger,
    NotFound,
    ParsedRow,
    RowError,
    RowSkipped,
    Trade,
    check_holdings,
    export_transactions_csv,
    irr_at,
    parse_transactions_csv,
    portfolio_figures,
    refuse_oversized_sells,
    replay_ledger,
    validate_amount,
    validate_fee,
    validate_price,
    validate_time,
    value_history,
)
from portfolio.domain import events as ev
from portfolio.domain.events import PortfolioState, TransactionState
from portfolio.domain.sell_holds import SellHold, public_counts, sell_holds
from portfolio.event_log import NewEvent
from portfolio.market_data import DailyOpens, PriceSource
from portfolio.unit_of_work import UnitOfWork

log = structlog.get_logger()
PriceAnswer: TypeAlias = PriceResolved | PriceUnavailable


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PortfolioService:
    pool: asyncpg.Pool
    prices: PriceSource
    opens: DailyOpens = field(init=False)
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self.opens = DailyOpens(self.prices)


@dataclass
class Outcome:
    """What a command produced: its result and the messages to publish after commit."""

    result: BaseModel | None
    outgoing: list[Message] = field(default_factory=list)


def not_found(portfolio_id: str) -> NotFound:
    return NotFound(f"No portfolio {portfolio_id} was found.", {"portfolio_id": portfolio_id})


def transaction_not_found(transaction_id: str) -> NotFound:
    return NotFound(f"No transaction {transaction_id} was found in this portfolio.",
                    {"transaction_id": transaction_id})


# ------------------------------------------------------------------ metrics


async def refresh_metrics(service: PortfolioService, uow: UnitOfWork, state: PortfolioState,
                          appended: Trade | None = None, *, priced_changed: bool = True,
                          changed_from: tuple[datetime, int] | None = None, only_counts: bool = False
                          ) -> dict[str, Any]:
    """Bring the portfolio's stored metrics up to date.

    `only_counts`: a pending trade came or went, so only the transaction counts change and the stored document
    is reused (no figures are computed, the ledger is not rewritten), unless sells are held: whether they wait or
    fail depends on the pending buys.

    O(1) when nothing priced changed (a pending trade, a goal) or `appended` extends the timeline (O(lots
    touched) for the lot methods). A change earlier in the timeline (`changed_from`: the earliest timeline key it
    touches) replays from the last checkpoint before it; a new cost-basis method replays everything. A ledger
    that missed midnight prices (`repair_from`) replays from there."""
    connection = uow.connection
    market = await uow.market()
    stored = uow.stored.pop(state.portfolio_id, None)
    had_holds = stored is None or stored.held_sells > 0
    if (only_counts and stored is not None and stored.metrics != "{}" and not stored.held_sells
            and state.repair_from is None):
        document = views.with_counts(json.loads(stored.metrics), state.counts)
        await repo.save_counts(connection, state, document)
        return document
    ledger = (Ledger.from_json(json.loads(stored.ledger)) if stored is not None
              else await repo.load_ledger(connection, state.portfolio_id))
    gaps: list[datetime] = []
    if state.repair_from is not None:
        repair = (state.repair_from, 0)
        changed_from = repair if changed_from is None else min(changed_from, repair)
        priced_changed = True
    if not priced_changed and ledger.method == state.method:
        return await store_figures(service, uow, state, ledger, market, gaps, had_holds)
    same_method = ledger.method == state.method
    last_seen = ledger.last_seen_key
    extends = (appended is not None and same_method and changed_from is None and ledger.covers(appended)
               and ledger.trade_count + len(ledger.uncovered) == state.counts.get("priced", 0) - 1
               and (last_seen is None or appended.timeline_key > last_seen))
    if extends and appended is not None:
        await ensure_opens(service, uow, ledger.last_at, appended.at, gaps)
        midnights = service.opens.between(ledger.last_at, appended.at) if ledger.last_at else ()
        outcomes = [ledger.apply(appended, midnights)]
        if ledger.trade_count % CHECKPOINT_EVERY == 0:
            await repo.store_checkpoints(connection, state.portfolio_id, [ledger.copy()])
    else:
        if changed_from is None and appended is not None:
            changed_from = appended.timeline_key
        checkpoint = (await repo.checkpoint_before(connection, state.portfolio_id, changed_from)
                      if same_method and changed_from is not None else None)
        start = checkpoint or Ledger.empty(state.method)
        trades = await repo.priced_trades(connection, state.portfolio_id, start.last_key)
        if trades:
            await ensure_opens(service, uow, start.last_at or trades[0].at, trades[-1].at, gaps)
        checkpoints: list[Ledger] = []
        ledger, outcomes = replay_ledger(state.method, trades, service.opens.between, start=start,
                                         checkpoints=checkpoints)
        await repo.replace_checkpoints(connection, state.portfolio_id, start.trade_count, checkpoints)
    await repo.save_outcomes(connection, outcomes)
    return await store_figures(service, uow, state, ledger, market, gaps, had_holds)


async def ensure_opens(service: PortfolioService, uow: UnitOfWork, after: datetime | None, until: datetime | None,
                       gaps: list[datetime]) -> None:
    """Have the midnight prices in (after, until]; where the price service can't give them yet, note the gap."""
    if after is not None and not await service.opens.ensure(uow.connection, after, until):
        gaps.append(after)


INLINE_IRR_TRADES = 100
"""Up to this many counted trades the IRR is computed with the other figures (a few ms at most: the root search
evaluates the NPV over every flow some 35 times, about 3 ms at 100 flows and 30 ms at 1,000); a larger
portfolio's IRR, which needs every cash flow, is left to the IRR pass after commit (see upkeep)."""


async def store_figures(service: PortfolioService, uow: UnitOfWork, state: PortfolioState, ledger: Ledger,
                        market: repo.Market | None, gaps: list[datetime], had_holds: bool) -> dict[str, Any]:
    """Store the ledger and every figure from it."""
    connection = uow.connection
    if market is not None:
        await ensure_opens(service, uow, ledger.last_at, market.as_of, gaps)
    holds: dict[str, SellHold] = {}
    if ledger.uncovered or had_holds:
        holds = sell_holds(ledger.uncovered, await repo.pending_buys(connection, state.portfolio_id))
        await repo.save_holds(connection, state.portfolio_id, holds)
    state.repair_from = min(gaps, default=None)
    irr_due = ledger.trade_count > INLINE_IRR_TRADES
    flows = None if irr_due else (await repo.counted_cash_flows(connection, [state.portfolio_id]))[state.portfolio_id]
    projection = project(service.opens, ledger, state, holds, market, flows)
    stored_irr = await repo.save_metrics(connection, state, projection, irr_due=irr_due)
    if irr_due:
        projection.metrics["irr_pct"] = stored_irr
    return projection.metrics


def project(opens: DailyOpens, ledger: Ledger, state: PortfolioState, holds: dict[str, SellHold],
            market: repo.Market | None, flows: Sequence[tuple[datetime, Decimal]] | None = None) -> repo.Projection:
    """The stored figures of a portfolio: its metrics document (IRR only when `flows` are given), and the return
    index with the midnights since the last trade folded in."""
    as_of = market.as_of if market else None
    tail = opens.between(ledger.last_at, as_of) if ledger.last_at is not None and as_of is not None else ()
    figures = portfolio_figures(ledger, latest_price=market.price_usd if market else None, as_of=as_of,
                                goal_usd=state.goal_usd, midnight_opens_since_last_trade=tail, flows=flows)
    shown = [hold.status for hold in holds.values()]
    document = views.metrics_document(figures, public_counts(state.counts, holds.values()))
    folded = ledger.returns.folded(tail)
    return repo.Projection(state.portfolio_id, ledger, document, folded.peak, folded.max_drawdown,
                           held_pending=shown.count(TransactionStatus.PENDING),
                           held_failed=shown.count(TransactionStatus.FAILED))


def updated_event(state: PortfolioState, metrics: dict[str, Any] | None, cause: Message | None, reason: str,
                  transaction_id: str | None = None) -> PortfolioUpdated:
    """portfolio.updated from the state and the metrics just stored (a deleted portfolio has none)."""
    caused = cause.caused() if cause is not None else {}
    if state.deleted or metrics is None:
        return PortfolioUpdated(owner_id=state.owner_id, portfolio_id=state.portfolio_id, version=state.version,
                                reason=reason, deleted=True, **caused)
    view = views.portfolio_view_of(state, metrics)
    return PortfolioUpdated(owner_id=state.owner_id, portfolio_id=state.portfolio_id, version=state.version,
                            reason=reason, transaction_id=transaction_id, portfolio=view, metrics=view.metrics,
                            **caused)


async def commit_events(uow: UnitOfWork, state: PortfolioState, events: list[NewEvent],
                        cause: Message, touched: list[str] = (), at: datetime | None = None  # type: ignore[assignment]
                        ) -> None:
    """Stage the events, fold them into the state, and save the projection in the same transaction.

    The fold here is the replay's fold, with the events' own recorded time, so a replay rebuilds the same rows."""
    now = at or datetime.now(UTC)
    expected = state.version if events[0].type != ev.PORTFOLIO_CREATED else 0
    metadata = {"message_id": cause.message_id, "correlation_id": cause.correlation_id,
                "causation_id": cause.causation_id, "occurred_at": cause.occurred_at.isoformat(),
                "schema_version": cause.schema_version}
    uow.stage(ev.stream_of(state.portfolio_id), expected, events, metadata, now)
    for event in events:
        if event.type != ev.PORTFOLIO_CREATED:
            ev.apply_event(state, event.type, event.payload, now)
    # the header is written with the metrics that follow, except at creation and deletion
    await repo.save_state(uow.connection, state, touched,
                          header=events[0].type == ev.PORTFOLIO_CREATED or state.deleted)


async def load_owned(uow: UnitOfWork, command: OwnedCommand, portfolio_id: str,
                     transaction_ids: list[str] = ()) -> PortfolioState:  # type: ignore[assignment]
    state = await repo.load_state(uow.connection, portfolio_id, command.owner_id, transaction_ids,
                                  stored=uow.stored)
    if state is None:
        raise not_found(portfolio_id)
    return state


# ------------------------------------------------------------------ portfolio commands


async def create_portfolio(service: PortfolioService, uow: UnitOfWork, command: CreatePortfolio
                           ) -> Outcome:
    if command.goal_usd is not None and command.goal_usd <= 0:
        raise DomainError("The goal must be a positive amount of USD.", {"field": "goal_usd"})
    portfolio_id = uuid4().hex
    payload = {"portfolio_id": portfolio_id, "owner_id": command.owner_id, "name": command.name.strip(),
               "method": command.cost_basis_method.value,
               "goal_usd": None if command.goal_usd is None else str(command.goal_usd)}
    now = datetime.now(UTC)
    state = ev.apply_event(None, ev.PORTFOLIO_CREATED, payload, now)
    await commit_events(uow, state, [NewEvent(ev.PORTFOLIO_CREATED, payload)], command, at=now)
    metrics = await refresh_metrics(service, uow, state, priced_changed=False)
    event = updated_event(state, metrics, command, "portfolio_created")
    return Outcome(event.portfolio, [event])


async def change_portfolio(service: PortfolioService, uow: UnitOfWork, command: OwnedCommand,
                           portfolio_id: str, event: NewEvent, reason: str) -> Outcome:
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
                                  NewEvent(ev.PORTFOLIO_RENAMED, {"name": command.name.strip()}), "portfolio_renamed")


async def set_goal(service: PortfolioService, uow: UnitOfWork, command: SetPortfolioGoal) -> Outcome:
    if command.goal_usd is not None and command.goal_usd <= 0:
        raise DomainError("The goal must be a positive amount of USD.", {"field": "goal_usd"})
    goal = None if command.goal_usd is None else str(command.goal_usd)
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  NewEvent(ev.PORTFOLIO_GOAL_SET, {"goal_usd": goal}), "goal_set")


async def set_method(service: PortfolioService, uow: UnitOfWork, command: SetCostBasisMethod
                     ) -> Outcome:
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  NewEvent(ev.COST_BASIS_METHOD_CHANGED, {"method": command.cost_basis_method.value}),
                                  "cost_basis_method_changed")


async def delete_portfolio(service: PortfolioService, uow: UnitOfWork, command: DeletePortfolio
                           ) -> Outcome:
    return await change_portfolio(service, uow, command, command.portfolio_id,
                                  NewEvent(ev.PORTFOLIO_DELETED, {}), "portfolio_deleted")


# ------------------------------------------------------------------ transaction commands


def price_request(state: PortfolioState, transaction_id: str, at: datetime, request_id: str, cause: Message
                  ) -> PriceRequested:
    return PriceRequested(message_id=request_id, transaction_id=transaction_id, portfolio_id=state.portfolio_id,
                          at=at, **cause.caused())


def recorded_payload(transaction_id: str, sequence: int, command: RecordTransaction | ParsedRow,
                     request_id: str | None) -> dict[str, Any]:
    return {"transaction_id": transaction_id, "sequence": sequence, "side": command.side.value,
            "amount_btc": str(command.amount_btc), "at": command.at.isoformat(), "fee_usd": str(command.fee_usd),
            "price_usd": None if command.price_usd is None else str(command.price_usd), "note": command.note,
            "price_request_id": request_id}


async def record_transaction(service: PortfolioService, uow: UnitOfWork, command: RecordTransaction
                             ) -> Outcome:
    validate_amount(command.amount_btc)
    validate_time(command.at, service.clock())
    validate_fee(command.fee_usd)
    validate_price(command.price_usd)
    state = await load_owned(uow, command, command.portfolio_id)
    transaction_id, sequence = uuid4().hex, state.next_sequence
    new = Trade(transaction_id, command.side, command.amount_btc, command.at, command.fee_usd, command.price_usd,
                sequence)
    if command.side.value == "sell":
        check_holdings([*await repo.holdings_timeline(uow.connection, state.portfolio_id), new])
    request_id = None if command.price_usd is not None else uuid4().hex
    payload = recorded_payload(transaction_id, sequence, command, request_id)
    await commit_events(uow, state, [NewEvent(ev.TRANSACTION_RECORDED, payload)], command, [transaction_id])
    outgoing: list[Message] = []
    if request_id is None:
        metrics = await refresh_metrics(service, uow, state, appended=new)
    else:
        metrics = await refresh_metrics(service, uow, state, priced_changed=False, only_counts=True)
        outgoing.append(price_request(state, transaction_id, command.at, request_id, command))
    outgoing.append(updated_event(state, metrics, command, "transaction_recorded", transaction_id))
    return Outcome(await transaction_result(uow, state, transaction_id), outgoing)


async def transaction_result(uow: UnitOfWork, state: PortfolioState, transaction_id: str) -> BaseModel:
    """The transaction as the caller sees it now; a pending one has no figures to read back."""
    tx = state.transactions[transaction_id]
    if tx.status.value == "pending":
        return views.transaction_view(views.pending_transaction_row(state.portfolio_id, tx), None)
    row = await repo.transaction_record(uow.connection, state.portfolio_id, transaction_id)
    market = await uow.market()
    return views.transaction_view(row, market.price_usd if market else None)  # type: ignore[arg-type]


async def edit_transaction(service: PortfolioService, uow: UnitOfWork, command: EditTransaction
                           ) -> Outcome:
    state = await load_owned(uow, command, command.portfolio_id, [command.transaction_id])
    tx = state.transactions.get(command.transaction_id)
    if tx is None:
        raise transaction_not_found(command.transaction_id)
    changes: dict[str, Any] = {}
    if command.amount_btc is not None:
        changes["amount_btc"] = str(validate_amount(command.amount_btc))
    if command.at is not None:
        changes["at"] = validate_time(command.at, service.clock()).isoformat()
    if command.fee_usd is not None:
        changes["fee_usd"] = str(validate_fee(command.fee_usd))
    if command.price_usd is not None:
        changes["price_usd"] = str(validate_price(command.price_usd))
    if "note" in command.model_fields_set:
        changes["note"] = command.note
    new_time = command.at is not None and command.at != tx.at
    needs_market_price = command.price_usd is None and (
        command.clear_price or (new_time and tx.price_source != "user") or tx.status.value == "failed")
    request_id = uuid4().hex if needs_market_price else None
    at = command.at or tx.at
    edited = Trade(tx.transaction_id, tx.side, command.amount_btc or tx.amount_btc, at, tx.fee_usd, None,
                   tx.sequence)
    timeline = [t for t in await repo.holdings_timeline(uow.connection, state.portfolio_id)
                if t.transaction_id != tx.transaction_id]
    check_holdings([*timeline, edited])
    payload = {"transaction_id": tx.transaction_id, "changes": changes, "price_request_id": request_id}
    changed_from = min((tx.at, tx.sequence), edited.timeline_key)
    await commit_events(uow, state, [NewEvent(ev.TRANSACTION_EDITED, payload)], command, [tx.transaction_id])
    metrics = await refresh_metrics(service, uow, state, changed_from=changed_from)
    outgoing: list[Message] = []
    if request_id is not None:
        outgoing.append(price_request(state, tx.transaction_id, at, request_id, command))
    outgoing.append(updated_event(state, metrics, command, "transaction_edited", tx.transaction_id))
    return Outcome(await transaction_result(uow, state, tx.transaction_id), outgoing)


async def delete_transaction(service: PortfolioService, uow: UnitOfWork, command: DeleteTransaction
                             ) -> Outcome:
    state = await load_owned(uow, command, command.portfolio_id, [command.transaction_id])
    gone = state.transactions.get(command.transaction_id)
    if gone is None:
        raise transaction_not_found(command.transaction_id)
    check_holdings([t for t in await repo.holdings_timeline(uow.connection, state.portfolio_id)
                    if t.transaction_id != command.transaction_id])
    await commit_events(uow, state, [NewEvent(ev.TRANSACTION_DELETED,
                                                     {"transaction_id": command.transaction_id})],
                        command, [command.transaction_id])
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
    timeline = await repo.holdings_timeline(uow.connection, state.portfolio_id)
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
    events, outgoing, ids = [], [], []
    wanted: list[WantedPrice] = []
    for row, trade in accepted:
        transaction_id = uuid4().hex if save else None
        results[row.line] = ImportRowResult(
            line=row.line, ok=True, side=row.side, amount_btc=row.amount_btc, at=row.at, fee_usd=row.fee_usd,
            price_usd=row.price_usd, note=row.note, transaction_id=transaction_id)
        if save and transaction_id:
            request_id = None if row.price_usd is not None else uuid4().hex
            events.append(NewEvent(ev.TRANSACTION_RECORDED,
                                   recorded_payload(transaction_id, trade.sequence, row, request_id)))
            ids.append(transaction_id)
            if request_id:
                wanted.append(WantedPrice(request_id=request_id, transaction_id=transaction_id, at=row.at))
    # one message asks for every market price of the file (a few for a very large one)
    outgoing += [PriceRequested.batch(state.portfolio_id, wanted[start:start + MAX_PRICES_PER_REQUEST],
                                      **command.caused())
                 for start in range(0, len(wanted), MAX_PRICES_PER_REQUEST)]
    if events:
        await commit_events(uow, state, events, command, ids)
        priced = [trade.timeline_key for row, trade in accepted if row.price_usd is not None]
        metrics = await refresh_metrics(service, uow, state, priced_changed=bool(priced),
                                        changed_from=min(priced, default=None))
        outgoing.append(updated_event(state, metrics, command, "transactions_imported"))
    report = ImportReport(format=file_format, dry_run=command.dry_run, total_rows=len(parsed),
                          valid_rows=len(accepted), imported=len(events),
                          rows=[results[line] for line in sorted(results)])
    return Outcome(report, outgoing)


# ------------------------------------------------------------------ queries


async def get_portfolio(service: PortfolioService, command: GetPortfolio) -> PortfolioView:
    row = await repo.portfolio_row(service.pool, command.portfolio_id, command.owner_id)
    if row is None:
        raise not_found(command.portfolio_id)
    return views.portfolio_view(row)


async def list_portfolios(service: PortfolioService, command: ListPortfolios) -> PortfolioList:
    rows, total = await repo.portfolio_rows(service.pool, command.owner_id, command.offset, command.limit)
    return PortfolioList(items=[views.portfolio_view(r) for r in rows], total=total, offset=command.offset,
                         limit=command.limit)


async def owned_or_missing(service: PortfolioService, command: OwnedCommand, portfolio_id: str) -> None:
    if await repo.portfolio_row(service.pool, portfolio_id, command.owner_id) is None:
        raise not_found(portfolio_id)


async def get_transaction(service: PortfolioService, command: GetTransaction) -> BaseModel:
    await owned_or_missing(service, command, command.portfolio_id)
    row = await repo.transaction_record(service.pool, command.portfolio_id, command.transaction_id)
    if row is None:
        raise transaction_not_found(command.transaction_id)
    market = await repo.market(service.pool)
    return views.transaction_view(row, market.price_usd if market else None)


async def list_transactions(service: PortfolioService, command: ListTransactions) -> TransactionPage:
    await owned_or_missing(service, command, command.portfolio_id)
    rows, total = await repo.transaction_rows(service.pool, command.portfolio_id, command.offset, command.limit)
    market = await repo.market(service.pool)
    latest = market.price_usd if market else None
    return TransactionPage(items=[views.transaction_view(r, latest) for r in rows], total=total,
                           offset=command.offset, limit=command.limit)


MAX_HISTORY_POINTS = {Interval.HOUR: 24 * 400, Interval.DAY: 366 * 20}


async def get_history(service: PortfolioService, command: GetHistory) -> History:
    await owned_or_missing(service, command, command.portfolio_id)
    async with service.pool.acquire() as connection:
        trades = await repo.priced_trades(connection, command.portfolio_id)
        market = await repo.market(connection)
    step = 3600 if command.interval == Interval.HOUR else 86400
    end = command.end or (market.as_of if market else service.clock())
    # the default start (30 days back) stays inside the contract's time range, which begins at the epoch
    start = command.start or (trades[0].at if trades else max(end - timedelta(days=30), EARLIEST_TIME))
    if end < start:
        raise DomainError("end must not be before start.", {"field": "end"})
    first = int(start.timestamp()) // step * step
    last = int(end.timestamp())
    if (last - first) // step > MAX_HISTORY_POINTS[command.interval]:
        raise DomainError(f"That range has more than {MAX_HISTORY_POINTS[command.interval]} points at "
                          f"{command.interval.value} steps; choose a shorter range or daily steps.",
                          {"field": "start"})
    answer = await service.prices.range(first, last, command.interval.value)
    if answer is None:
        raise DomainError("Prices are unavailable right now; try again shortly.", {"retry": True})
    prices = {c.hour: c.open for c in answer.candles}
    moments = [(datetime.fromtimestamp(t, UTC), prices.get(t)) for t in range(first, last + 1, step)]
    points = value_history(trades, moments)
    return History(portfolio_id=command.portfolio_id, interval=command.interval, start=start, end=end,
                   points=[HistoryPoint(at=p.at, price_usd=p.price_usd, holdings_btc=p.holdings_btc,
                                        invested_usd=p.invested_usd, value_usd=p.value_usd) for p in points])


async def export_transactions(service: PortfolioService, command: ExportTransactions) -> ExportFile:
    await owned_or_missing(service, command, command.portfolio_id)
    rows = await repo.all_transactions(service.pool, command.portfolio_id)
    stem = f"bitfolio-{command.portfolio_id[:8]}-transactions"
    if command.format == "json":
        market = await repo.market(service.pool)
        items = [views.transaction_view(r, market.price_usd if market else None).model_dump(mode="json")
                 for r in rows]
        return ExportFile(format="json", filename=f"{stem}.json", content_type="application/json",
                          content=json.dumps(items, indent=2))
    trades = [Trade(r["transaction_id"], Side(r["side"]), r["amount_btc"], r["at"], r["fee_usd"], r["price_usd"],
                    r["sequence"]) for r in rows if r["status"] != "failed" or r["price_usd"] is not None]
    content = export_transactions_csv(trades, {r["transaction_id"]: r["note"] for r in rows})
    return ExportFile(format="csv", filename=f"{stem}.csv", content_type="text/csv", content=content)


WRITES: dict[type[OwnedCommand], Callable[..., Awaitable[Outcome]]] = {
    CreatePortfolio: create_portfolio, RenamePortfolio: rename_portfolio, SetPortfolioGoal: set_goal,
    SetCostBasisMethod: set_method, DeletePortfolio: delete_portfolio, RecordTransaction: record_transaction,
    EditTransaction: edit_transaction, DeleteTransaction: delete_transaction, ImportTransactions: import_transactions,
}
READS: dict[type[OwnedCommand], Callable[..., Awaitable[BaseModel]]] = {
    GetPortfolio: get_portfolio, ListPortfolios: list_portfolios, GetTransaction: get_transaction,
    ListTransactions: list_transactions, GetHistory: get_history, ExportTransactions: export_transactions,
}


# ------------------------------------------------------------------ writes in batches


@dataclass
class Handled:
    """What one write produced: a command's reply, the messages it queued, how many portfolios a tick moved."""

    reply: Reply | None = None
    outgoing: list[Message] = field(default_factory=list)
    moved: int = 0


class CarefulRetry(Exception):
    """A message of a batch run without savepoints failed: the batch is rolled back and run again with them."""


async def run_batch(service: PortfolioService, messages: Sequence[Message]) -> list[Handled | Exception]:
    """Handle writes (commands, price answers, ticks) in one transaction.

    Returns, per message, what it produced or the exception it raised; a failed message's inbox claim is given
    back so that its redelivery runs it again. Raises only when the batch as a whole cannot commit. A batch first
    runs without savepoints (two round trips less per message); if any message fails, it is rolled back and run
    again with a savepoint around each message, so that the failure undoes only its own work."""
    try:
        try:
            return await run_in_transaction(service, messages, careful=len(messages) == 1)
        except CarefulRetry:
            return await run_in_transaction(service, messages, careful=True)
    except Conflict as conflict:
        if len(messages) == 1 and isinstance(messages[0], OwnedCommand):
            return [Handled(Reply.failure(messages[0], ErrorCode.CONFLICT, conflict.message))]
        raise


async def run_in_transaction(service: PortfolioService, messages: Sequence[Message], *, careful: bool
                             ) -> list[Handled | Exception]:
    results: list[Handled | Exception] = []
    async with service.pool.acquire() as connection, connection.transaction():
        uow = UnitOfWork(connection)
        # Claim every id first: a concurrent copy waits on these rows, then finds them taken.
        fresh = await repo.claim(connection, [message.message_id for message in messages])
        groups = {} if careful else answers_by_portfolio(messages, fresh)
        absorbed: set[str] = set()
        for message in messages:
            if message.message_id in absorbed:
                absorbed.discard(message.message_id)
                results.append(Handled())  # applied with the first answer of its portfolio in this batch
                continue
            if message.message_id not in fresh:
                results.append(await handled_before(uow, message))
                continue
            fresh.discard(message.message_id)
            if careful:
                results.append(await handle_in_savepoint(service, uow, message))
                continue
            try:
                if message.message_id in groups:
                    group = groups[message.message_id]
                    absorbed.update(answer.message_id for answer in group[1:])
                    handled = Handled(outgoing=await apply_price_answers(service, uow, as_one_answer(group)))
                else:
                    handled = await handle_write(service, uow, message)
            except Exception as error:
                raise CarefulRetry from error
            remember_reply(uow, message, handled)
            results.append(handled)
        await uow.flush()
    return results


def answers_by_portfolio(messages: Sequence[Message], fresh: set[str]) -> dict[str, list[PriceAnswer]]:
    """Single price answers of one portfolio in a batch, keyed by the first one's id: they are applied together,
    in one fold of the ledger, however many there are and in whatever time order."""
    by_portfolio: dict[str, dict[str, PriceAnswer]] = {}
    for message in messages:
        if (isinstance(message, PriceResolved | PriceUnavailable) and message.schema_version == 1
                and message.portfolio_id and message.message_id in fresh):
            by_portfolio.setdefault(message.portfolio_id, {})[message.message_id] = message
    return {next(iter(group)): list(group.values()) for group in by_portfolio.values() if len(group) > 1}


def as_one_answer(answers: list[PriceAnswer]) -> PriceResolved:
    """Single answers of one portfolio as one batch answer, in the first one's envelope."""
    first = answers[0]
    resolved = [ResolvedPrice(request_id=a.causation_id, transaction_id=a.transaction_id, at=a.at, hour=a.hour,
                              price_usd=a.price_usd, source=a.source)
                for a in answers if isinstance(a, PriceResolved)]
    unavailable = [UnavailablePrice(request_id=a.causation_id, transaction_id=a.transaction_id, at=a.at,
                                    reason=a.reason, detail=a.detail)
                   for a in answers if isinstance(a, PriceUnavailable)]
    return PriceResolved(schema_version=2, message_id=first.message_id, correlation_id=first.correlation_id,
                         causation_id=first.causation_id, portfolio_id=first.portfolio_id, resolved=resolved,
                         unavailable=unavailable)


def remember_reply(uow: UnitOfWork, message: Message, handled: Handled) -> None:
    if handled.reply is not None:
        uow.replies[message.message_id] = handled.reply.to_json()


def refusal(command: OwnedCommand, error: DomainError) -> Reply:
    """A command the domain refused, as its typed error reply."""
    return Reply.failure(command, ErrorCode(error.code), error.message, error.details or None)


async def handle_in_savepoint(service: PortfolioService, uow: UnitOfWork, message: Message) -> Handled | Exception:
    """A refused command is answered with its error; any other failure gives its inbox claim back."""
    try:
        async with uow.savepoint():
            handled = await handle_write(service, uow, message)
    except Exception as error:
        if not (isinstance(error, DomainError) and isinstance(message, OwnedCommand)):
            uow.release(message.message_id)
            return error
        handled = Handled(refusal(message, error))
    remember_reply(uow, message, handled)
    return handled


async def handled_before(uow: UnitOfWork, message: Message) -> Handled:
    """A duplicate: a command gets the reply stored the first time; an event changes nothing."""
    if not isinstance(message, OwnedCommand):
        return Handled()
    stored = uow.replies.get(message.message_id) or (await repo.inbox_reply(uow.connection, message.message_id))[1]
    return Handled(Reply.from_json(stored) if stored else Reply.failure(
        message, ErrorCode.CONFLICT, "This request was already handled; its result is no longer available."))


async def handle_write(service: PortfolioService, uow: UnitOfWork, message: Message) -> Handled:
    # Each message reads the latest price again, after it has locked its portfolio: a tick that another copy
    # committed since an earlier message of this batch must not be undone by metrics at the price before it.
    uow.forget_market()
    if isinstance(message, PriceTicked):
        return Handled(moved=await apply_price_tick(service, uow, message))
    if isinstance(message, PriceResolved | PriceUnavailable):
        return Handled(outgoing=await apply_price_answer(service, uow, message))
    outcome = await WRITES[type(message)](service, uow, message)  # type: ignore[index]
    uow.publish(outcome.outgoing)
    return Handled(Reply.success(message, outcome.result), outcome.outgoing)  # type: ignore[arg-type]


async def handle_alone(service: PortfolioService, message: Message) -> Handled:
    """One write in its own transaction (the service batches them; tests and tools call this)."""
    result = (await run_batch(service, [message]))[0]
    if isinstance(result, Exception):
        raise result
    return result


async def handle_command(service: PortfolioService, command: OwnedCommand) -> tuple[Reply, list[Message]]:
    """A read runs at once on the pool; a write commits its events, projection, outbox rows and reply together."""
    if type(command) in READS:
        try:
            return Reply.success(command, await READS[type(command)](service, command)), []
        except DomainError as error:
            return refusal(command, error), []
    handled = await handle_alone(service, command)
    return handled.reply, handled.outgoing  # type: ignore[return-value]


async def on_price_answer(service: PortfolioService, answer: PriceResolved | PriceUnavailable) -> list[Message]:
    return (await handle_alone(service, answer)).outgoing


# ------------------------------------------------------------------ price events


def priced_event(transaction_id: str, price_usd: Decimal, hour: int, source: str) -> NewEvent:
    return NewEvent(ev.TRANSACTION_PRICED, {"transaction_id": transaction_id, "price_usd": str(price_usd),
                                            "hour": hour, "source": source})


def pricing_failed_event(transaction_id: str, reason: str, detail: str) -> NewEvent:
    return NewEvent(ev.TRANSACTION_PRICING_FAILED, {"transaction_id": transaction_id, "reason": reason,
                                                    "detail": detail})


def awaits_answer(tx: TransactionState | None, request_id: str | None) -> bool:
    """Only the answer to a pending transaction's latest request counts; an outdated one is ignored."""
    return tx is not None and tx.price_request_id == request_id and tx.status == TransactionStatus.PENDING


async def apply_price_answer(service: PortfolioService, uow: UnitOfWork, answer: PriceResolved | PriceUnavailable
                             ) -> list[Message]:
    """Mark the transaction priced or failed; an answer to an outdated request is ignored."""
    if isinstance(answer, PriceResolved) and answer.schema_version == 2:
        return await apply_price_answers(service, uow, answer)
    transaction_id: str = answer.transaction_id  # type: ignore[assignment]
    state = await repo.load_state_of_transaction(uow.connection, transaction_id, uow.stored)
    tx = state.transactions[transaction_id] if state is not None else None
    if state is None or tx is None or not awaits_answer(tx, answer.causation_id):
        log.info("price_answer_ignored", transaction_id=transaction_id)
        return []
    if isinstance(answer, PriceResolved):
        event = priced_event(transaction_id, answer.price_usd, answer.hour, answer.source)  # type: ignore[arg-type]
        reason = "transaction_priced"
    else:
        event = pricing_failed_event(transaction_id, answer.reason.value, answer.detail)
        reason = "transaction_failed"
    await commit_events(uow, state, [event], answer, [transaction_id])
    resolved = isinstance(answer, PriceResolved)
    appended = tx.trade() if resolved else None
    metrics = await refresh_metrics(service, uow, state, appended=appended, priced_changed=resolved,
                                    only_counts=not resolved)
    outgoing: list[Message] = [updated_event(state, metrics, answer, reason, transaction_id)]
    uow.publish(outgoing)
    return outgoing


async def apply_price_answers(service: PortfolioService, uow: UnitOfWork, answer: PriceResolved) -> list[Message]:
    """The answers to a batch price request: every trade priced or failed in one append, then one fold of the
    ledger from the earliest trade priced, whatever order the answers came in."""
    ids = [item.transaction_id for item in [*answer.resolved, *answer.unavailable]]
    state = await repo.load_state(uow.connection, answer.portfolio_id, None, ids, stored=uow.stored) \
        if answer.portfolio_id else None
    if state is None:
        log.info("price_answers_ignored", portfolio_id=answer.portfolio_id)
        return []
    events, touched, priced_keys = [], [], []
    for item in answer.resolved:
        tx = state.transactions.get(item.transaction_id)
        if awaits_answer(tx, item.request_id):
            events.append(priced_event(item.transaction_id, item.price_usd, item.hour, item.source))
            touched.append(item.transaction_id)
            priced_keys.append((tx.at, tx.sequence))  # type: ignore[union-attr]
    for failure in answer.unavailable:
        if awaits_answer(state.transactions.get(failure.transaction_id), failure.request_id):
            events.append(pricing_failed_event(failure.transaction_id, failure.reason.value, failure.detail))
            touched.append(failure.transaction_id)
    if not events:
        log.info("price_answers_ignored", portfolio_id=answer.portfolio_id)
        return []
    await commit_events(uow, state, events, answer, touched)
    metrics = await refresh_metrics(service, uow, state, priced_changed=bool(priced_keys),
                                    changed_from=min(priced_keys, default=None), only_counts=not priced_keys)
    outgoing: list[Message] = [updated_event(state, metrics, answer, "transactions_priced")]
    uow.publish(outgoing)
    return outgoing


async def apply_price_tick(service: PortfolioService, uow: UnitOfWork, tick: PriceTicked) -> int:
    """Move every portfolio to the new price, with the midnights passed since the last tick, in chunks: one read
    and one write a chunk, every figure (IRR included) from the domain, one portfolio.updated each."""
    connection = uow.connection
    before = await uow.market()
    if not await repo.save_market(connection, tick.hour, tick.price_usd, tick.as_of):
        return 0
    uow.forget_market()
    newest = datetime.fromtimestamp(tick.hour, UTC)
    if tick.open_usd is not None and tick.hour % 86400 == 0:
        await repo.store_daily_opens(connection, [(newest, tick.open_usd)])
        service.opens.remember(newest, tick.open_usd)
    # a catch-up may pass several midnights at once; the last tick's own hour was folded then
    since = datetime.fromtimestamp(before.hour, UTC) if before is not None else newest - timedelta(hours=1)
    if not await service.opens.ensure(connection, since, newest):
        await repo.mark_for_repair(connection, since)
    market = repo.Market(tick.hour, tick.price_usd, tick.as_of)
    midnights = service.opens.between(since, newest)
    moved = 0
    await repo.lock_all_portfolios(connection)
    async for chunk in repo.tick_inputs(connection, TICK_CHUNK):
        flows = await repo.counted_cash_flows(connection, [item.state.portfolio_id for item in chunk])
        moved_figures = [moved_to(item, market, midnights, flows[item.state.portfolio_id]) for item in chunk]
        await repo.store_tick_figures(connection, moved_figures)
        uow.publish([updated_event(item.state, projection.metrics, tick, "price_ticked")
                     for item, projection in zip(chunk, moved_figures, strict=True)])
        moved += len(chunk)
    return moved


TICK_CHUNK = 2000
"""Portfolios moved per statement by a price tick."""


def moved_to(item: repo.TickInputs, market: repo.Market, midnights: Sequence[tuple[datetime, Decimal]],
             flows: list[tuple[datetime, Decimal]]) -> repo.Projection:
    """A portfolio's figures at a new price, by the same domain function as every write: the stored ledger state
    (without its lots, which a price does not touch), the midnights since the last tick after its last trade."""
    tail = [(day, price) for day, price in midnights if item.last_at is None or day > item.last_at]
    figures = portfolio_figures(item.ledger, latest_price=market.price_usd, as_of=market.as_of,
                                goal_usd=item.state.goal_usd, midnight_opens_since_last_trade=tail, flows=flows)
    folded = item.ledger.returns.folded(tail)
    return repo.Projection(item.state.portfolio_id, item.ledger, views.metrics_document(figures, item.shown_counts), folded.peak,
                           folded.max_drawdown)


IRR_BATCH = 1000


async def refresh_irrs(connection: asyncpg.Connection, cause: Message | None, reason: str, *,
                       batches: int | None = None) -> list[Message]:
    """The IRR of every portfolio whose IRR is due (up to `batches` batches), and a portfolio.updated for each."""
    updates: list[Message] = []
    done = 0
    while batches is None or done < batches:
        due = await repo.irr_inputs(connection, IRR_BATCH)
        if not due:
            break
        irrs = {item.portfolio_id: irr_at(item.flows, item.current_value_usd, item.as_of) for item in due}
        caused = cause.caused() if cause is not None else {}
        for row in await repo.store_irrs(connection, irrs):
            view = views.portfolio_view(row)
            updates.append(PortfolioUpdated(owner_id=view.owner_id, portfolio_id=view.portfolio_id,
                                            version=view.version, reason=reason, portfolio=view,
                                            metrics=view.metrics, **caused))
        done += 1
    return updates
