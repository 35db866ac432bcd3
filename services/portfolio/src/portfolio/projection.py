"""The projection: a portfolio's ledger, figures and IRR brought up to date from its events, in the writer's transaction."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from contracts.envelope import Message
from contracts.portfolios import OwnedCommand, PortfolioUpdated, TransactionKind, TransactionStatus
from contracts.prices import PriceRequested
from pydantic import BaseModel

from portfolio import repository as repo
from portfolio import views
from portfolio.cash_flows import Flows
from portfolio.domain import (
    CHECKPOINT_EVERY,
    Ledger,
    Trade,
    TradeOutcome,
    cash_flows,
    irr_at,
    portfolio_figures,
    replay_ledger,
)
from portfolio.domain import events as ev
from portfolio.domain.events import PortfolioState
from portfolio.domain.sell_holds import SellHold, public_counts, sell_holds
from portfolio.domain.transfers import Arrival, counted_arrival, lots_from_json, waiting_arrival, withheld_arrival
from portfolio.event_log import NewEvent
from portfolio.market_data import DailyOpens
from portfolio.service import PortfolioService, not_found
from portfolio.unit_of_work import UnitOfWork


async def refresh_metrics(service: PortfolioService, uow: UnitOfWork, state: PortfolioState,
                          appended: Trade | None = None, *, priced_changed: bool = True,
                          changed_from: tuple[datetime, int] | None = None, only_counts: bool = False,
                          newly_priced: int = 0) -> dict[str, Any]:
    """Bring the portfolio's stored metrics up to date (see `recompute`), and the destinations of its transfers
    with them (see `sync_arrivals`)."""
    metrics, outcomes, holds = await recompute(service, uow, state, appended, priced_changed=priced_changed,
                                               changed_from=changed_from, only_counts=only_counts,
                                               newly_priced=newly_priced)
    await sync_arrivals(service, uow, state, outcomes, holds)
    return metrics


async def recompute(service: PortfolioService, uow: UnitOfWork, state: PortfolioState, appended: Trade | None,
                    *, priced_changed: bool, changed_from: tuple[datetime, int] | None, only_counts: bool,
                    newly_priced: int = 0) -> tuple[dict[str, Any], list[TradeOutcome], dict[str, SellHold]]:
    """Bring the portfolio's stored metrics up to date; returns them, the outcomes recomputed and the holds.

    `only_counts`: a pending trade came or went, so only the transaction counts change and the stored document
    is reused (no figures are computed, the ledger is not rewritten), unless sells are held: whether they wait or
    fail depends on the pending buys.

    O(1) when nothing priced changed (a pending trade, a goal) or `appended` extends the timeline (O(lots
    touched) for the lot methods). A change earlier in the timeline (`changed_from`: the earliest timeline key it
    touches) replays from the last checkpoint before it; a new cost-basis method replays everything. A ledger
    that missed midnight prices (`repair_from`) replays from there. Trades just priced (`newly_priced` of them,
    from `changed_from` on) that all lie after the stored ledger's last trade extend it: O(those trades)."""
    connection = uow.connection
    stored = uow.stored.pop(state.portfolio_id, None)
    had_holds = stored is None or stored.held_sells > 0
    if (only_counts and stored is not None and stored.metrics != "{}" and not stored.held_sells
            and state.repair_from is None):
        document = views.with_counts(json.loads(stored.metrics), state.counts)
        await uow.repo.save_counts(connection, state, document)
        unchanged = uow.known_flows(state.portfolio_id, service.cash_flows)
        if unchanged is not None:  # a pending trade counts no flow: the flows known go on to the new version
            uow.flows[state.portfolio_id] = (state, unchanged)
        return document, [], {}
    market = await uow.market()  # not before: a pending trade's counts need no price
    ledger = (stored.read_ledger() if stored is not None
              else await uow.repo.load_ledger(connection, state.portfolio_id))
    gaps: list[datetime] = []
    if state.repair_from is not None:
        repair = (state.repair_from, 0)
        changed_from = repair if changed_from is None else min(changed_from, repair)
        priced_changed = True
    # a ledger stored before lots carried their buy times is refolded from the first trade, as for a new method
    same_method = ledger.method == state.method and not ledger.needs_refold
    if not priced_changed and same_method:
        return await store_figures(service, uow, state, ledger, market, gaps, had_holds, extends=True)
    last_seen = ledger.last_seen_key
    extends = (appended is not None and same_method and changed_from is None and ledger.covers(appended)
               and ledger.trade_count + len(ledger.uncovered) == state.counts.get("priced", 0) - 1
               and (last_seen is None or appended.timeline_key > last_seen))
    if extends and appended is not None:
        await ensure_opens(service, uow, ledger.last_at, appended.at, gaps)
        midnights = service.opens.between(ledger.last_at, appended.at) if ledger.last_at else ()
        outcomes = [ledger.apply(appended, midnights)]
        if ledger.trade_count % CHECKPOINT_EVERY == 0:
            await uow.repo.store_checkpoints(connection, state.portfolio_id, [ledger.copy()])
    else:
        if changed_from is None and appended is not None:
            changed_from, newly_priced = appended.timeline_key, 1
        if (same_method and changed_from is not None and newly_priced
                and ledger.trade_count + len(ledger.uncovered) == state.counts.get("priced", 0) - newly_priced
                and (last_seen is None or changed_from > last_seen)):
            checkpoint = ledger  # every trade changed lies after the stored ledger's end: it goes on from there
        else:
            checkpoint = (await uow.repo.checkpoint_before(connection, state.portfolio_id, changed_from)
                          if same_method and changed_from is not None else None)
        if checkpoint is not None and checkpoint.needs_refold:
            checkpoint = None  # its lots lack buy times: the replay from the first trade rewrites every checkpoint
        start = checkpoint or Ledger.empty(state.method)
        kept_count = start.trade_count  # the replay advances `start` itself
        await uow.write_rows(state.portfolio_id)
        trades = await uow.repo.priced_trades(connection, state.portfolio_id, start.last_key)
        if trades:
            await ensure_opens(service, uow, start.last_at or trades[0].at, trades[-1].at, gaps)
        checkpoints: list[Ledger] = []
        ledger, outcomes = replay_ledger(state.method, trades, service.opens.between, start=start,
                                         checkpoints=checkpoints)
        await uow.repo.replace_checkpoints(connection, state.portfolio_id, kept_count, checkpoints)
    uow.outcomes.update((outcome.transaction_id, outcome) for outcome in outcomes)
    metrics, _, holds = await store_figures(service, uow, state, ledger, market, gaps, had_holds, outcomes,
                                            appended, extends=extends)
    return metrics, outcomes, holds


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
                        market: repo.Market | None, gaps: list[datetime], had_holds: bool,
                        outcomes: Sequence[TradeOutcome] = (), appended: Trade | None = None, extends: bool = False
                        ) -> tuple[dict[str, Any], list[TradeOutcome], dict[str, SellHold]]:
    """Store the trades' figures (`outcomes`), the ledger and every figure from it; returns the metrics, no
    outcomes, and the holds. `extends`: the outcomes are none, or those of `appended` alone, a trade after every
    counted one (so the cash flows before it, when remembered, need only its own)."""
    connection = uow.connection
    if market is not None:
        await ensure_opens(service, uow, ledger.last_at, market.as_of, gaps)
    holds: dict[str, SellHold] = {}
    if ledger.uncovered or had_holds:
        await uow.write_rows(state.portfolio_id)
        holds = sell_holds(ledger.uncovered, await uow.repo.pending_buys(connection, state.portfolio_id))
        await uow.repo.save_holds(connection, state.portfolio_id, holds)
    state.repair_from = min(gaps, default=None)
    irr_due = ledger.trade_count > INLINE_IRR_TRADES
    new_rows = uow.take_rows(state.portfolio_id)  # new trades, with the figures just computed
    inserted = {row[0] for row in new_rows}
    others = [o for o in outcomes if o.transaction_id not in inserted]
    flows = (extended_flows(uow, service, state, outcomes, appended)
             if extends and not irr_due and not holds and not had_holds else None)
    if flows is not None:  # known without a read: the rows, the figures and the metrics in one statement
        projection = project(service.opens, ledger, state, holds, market, flows)
        await uow.repo.save_figures(connection, state, projection, others, new_rows)
        uow.flows[state.portfolio_id] = (state, flows)
        return projection.metrics, [], holds
    if irr_due:
        if new_rows:
            await uow.repo.insert_transactions(connection, new_rows)
        await uow.repo.save_outcomes(connection, others)
    else:  # the IRR's cash flows are read back with the rows and figures just stored
        flows = tuple(await uow.repo.save_outcomes_and_flows(connection, state.portfolio_id, others, new_rows))
    uow.flows[state.portfolio_id] = (state, flows)
    projection = project(service.opens, ledger, state, holds, market, flows)
    stored_irr = await uow.repo.save_metrics(connection, state, projection, irr_due=irr_due)
    if irr_due:
        projection.metrics["irr_pct"] = stored_irr
    return projection.metrics, [], holds


def extended_flows(uow: UnitOfWork, service: PortfolioService, state: PortfolioState,
                   outcomes: Sequence[TradeOutcome], appended: Trade | None) -> Flows | None:
    """The cash flows after `outcomes` (none, or `appended`'s alone) when the flows before are known: computed
    in this batch, or remembered at the version the batch found."""
    before = uow.known_flows(state.portfolio_id, service.cash_flows)
    if before is None or len(outcomes) > 1 or (outcomes and appended is None):
        return None
    return before + tuple(cash_flows([(appended.at, outcome) for outcome in outcomes]))  # type: ignore[union-attr]


async def sync_arrivals(service: PortfolioService, uow: UnitOfWork, state: PortfolioState,
                        outcomes: Sequence[TradeOutcome], holds: dict[str, SellHold]) -> None:
    """Make the destination's side of each transfer-out just recomputed (counted, held, pending or failed) hold
    what this portfolio's ledger says of it: TransferLotsSet in the destination's stream where they differ, then
    the destination's metrics from that transfer on (which may cascade to its own transfers)."""
    sent = {o.transaction_id: o for o in outcomes if o.moved_lots}
    unpriced = [tx.transaction_id for tx in state.transactions.values()
                if tx.kind == TransactionKind.TRANSFER_OUT and tx.status != TransactionStatus.PRICED]
    if not sent and not holds and not unpriced:
        return
    changed: dict[str, list[tuple[ev.TransferLotsSet, tuple[datetime, int]]]] = {}
    for row in await uow.repo.arrivals_held(uow.connection, [*sent, *holds, *unpriced]):
        arrival = source_says(row, sent.get(row["transaction_id"]), holds.get(row["transaction_id"]))
        if arrival is not None and arrival != destination_holds(row):
            changed.setdefault(row["portfolio_id"], []).append(
                (ev.TransferLotsSet(row["arrival_id"], arrival), (row["at"], row["sequence"])))
    cause = uow.cause or Message()
    for portfolio_id in sorted(changed):
        events = [event for event, _ in changed[portfolio_id]]
        ids = [e.transaction_id for e in events]
        destination = uow.changing.get(portfolio_id)  # already changed by this message: the same state goes on
        if destination is not None:
            await uow.repo.load_transactions(uow.connection, destination,
                                             [i for i in ids if i not in destination.transactions])
        else:
            destination = await uow.repo.load_state(uow.connection, portfolio_id, None, ids, stored=uow.stored)
        if destination is None or destination.deleted:
            continue  # deleted: the other side of its transfers stays as it was
        await commit_events(uow, destination, events, cause, ids)
        metrics = await refresh_metrics(service, uow, destination,
                                        changed_from=min(key for _, key in changed[portfolio_id]))
        uow.publish([updated_event(destination, metrics, cause, "transfer_arrived")])


def source_says(row: asyncpg.Record, counted: TradeOutcome | None, hold: SellHold | None) -> Arrival | None:
    """The destination's side as the source's ledger has it now (None: nothing recomputed says so)."""
    if hold is not None:
        return withheld_arrival(hold.status, hold.reason, hold.detail)
    if counted is not None:
        return counted_arrival(row["source_price"], row["source_hour"], counted.moved_lots, row["fee_btc"])
    if row["source_status"] == TransactionStatus.PENDING:
        return waiting_arrival()
    if row["source_status"] == TransactionStatus.FAILED:
        return withheld_arrival(TransactionStatus.FAILED, row["source_reason"], row["source_detail"])
    return None


def destination_holds(row: asyncpg.Record) -> Arrival:
    return Arrival(TransactionStatus(row["status"]), row["price_usd"], row["price_hour"],
                   lots_from_json(json.loads(row["lots"]) if row["lots"] else None), row["failure_reason"],
                   row["failure_detail"])


def project(opens: DailyOpens, ledger: Ledger, state: PortfolioState, holds: dict[str, SellHold],
            market: repo.Market | None, flows: Sequence[tuple[datetime, Decimal]] | None = None) -> repo.Projection:
    """The stored figures of a portfolio after a write: its held sells shown as pending or failed, and the
    midnights since its last trade up to the latest price."""
    as_of = market.as_of if market else None
    tail = opens.between(ledger.last_at, as_of) if ledger.last_at is not None and as_of is not None else ()
    shown = [hold.status for hold in holds.values()]
    return figures_stored(state, ledger, public_counts(state.counts, holds.values()), market, tail, flows,
                          held_pending=shown.count(TransactionStatus.PENDING),
                          held_failed=shown.count(TransactionStatus.FAILED))


def figures_stored(state: PortfolioState, ledger: Ledger, shown_counts: dict[str, int], market: repo.Market | None,
                   tail: Sequence[tuple[datetime, Decimal]], flows: Sequence[tuple[datetime, Decimal]] | None,
                   held_pending: int = 0, held_failed: int = 0) -> repo.Projection:
    """Every figure by the domain function (IRR only when `flows` are given) as the stored metrics document, and
    the return index with the `tail` midnights (those after the last trade) folded in."""
    folded = ledger.returns.folded(tail)
    figures = portfolio_figures(ledger, latest_price=market.price_usd if market else None,
                                as_of=market.as_of if market else None, goal_usd=state.goal_usd,
                                midnight_opens_since_last_trade=tail, flows=flows, folded_returns=folded)
    return repo.Projection(state.portfolio_id, ledger, views.metrics_document(figures, shown_counts), folded.peak,
                           folded.max_drawdown, held_pending, held_failed)


def price_request(state: PortfolioState, transaction_id: str, at: datetime, request_id: str, cause: Message
                  ) -> PriceRequested:
    return PriceRequested(message_id=request_id, transaction_id=transaction_id, portfolio_id=state.portfolio_id,
                          at=at, **cause.caused())


async def transaction_result(uow: UnitOfWork, state: PortfolioState, transaction_id: str) -> BaseModel:
    """The transaction as the caller sees it now; a pending one has no figures, and one the ledger just counted
    has them in hand (`uow.outcomes`), so neither is read back."""
    tx = state.transactions[transaction_id]
    if tx.status.value == "pending":
        return views.transaction_view(views.pending_transaction_row(state.portfolio_id, tx), None)
    outcome = uow.outcomes.get(transaction_id)
    if outcome is not None and tx.status.value == "priced" and tx.hold_reason is None:
        market = await uow.market()
        row = {**views.pending_transaction_row(state.portfolio_id, tx),
               **dict(zip(repo.OUTCOME_COLUMNS, repo.outcome_figures(outcome), strict=True))}
        return views.transaction_view(row, market.price_usd if market else None)
    row = await uow.repo.transaction_record(uow.connection, state.portfolio_id, transaction_id)
    market = await uow.market()
    return views.transaction_view(row, market.price_usd if market else None)  # type: ignore[arg-type]


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


async def commit_events(uow: UnitOfWork, state: PortfolioState, events: Sequence[ev.DomainEvent],
                        cause: Message, touched: Sequence[str] = (), at: datetime | None = None) -> None:
    """Stage the events, fold them into the state, and save the projection in the same transaction.

    The fold here is the replay's fold, with the events' own recorded time, so a replay rebuilds the same rows."""
    now = at or datetime.now(UTC)
    created = isinstance(events[0], ev.PortfolioCreated)
    metadata = {"message_id": cause.message_id, "correlation_id": cause.correlation_id,
                "causation_id": cause.causation_id, "occurred_at": cause.occurred_at.isoformat(),
                "schema_version": cause.schema_version}
    uow.versions_before.setdefault(state.portfolio_id, state.version)
    uow.stage(ev.stream_of(state.portfolio_id), 0 if created else state.version,
              [NewEvent(event.kind, event.payload()) for event in events], metadata, now)
    for event in events:
        if not isinstance(event, ev.PortfolioCreated):
            ev.apply_event(state, event, now)
    uow.changing[state.portfolio_id] = state
    # the header is written with the metrics that follow, except at creation and deletion
    await uow.repo.save_state(uow.connection, state, touched, header=created or state.deleted)


async def load_owned(uow: UnitOfWork, command: OwnedCommand, portfolio_id: str,
                     transaction_ids: list[str] = ()) -> PortfolioState:  # type: ignore[assignment]
    state = await uow.repo.load_state(uow.connection, portfolio_id, command.owner_id, transaction_ids,
                                      stored=uow.stored, locked=uow.locked)
    if state is None:
        raise not_found(portfolio_id)
    return state


TICK_CHUNK = 2000
"""Portfolios moved per statement by a price tick."""


def moved_to(item: repo.TickInputs, market: repo.Market, midnights: Sequence[tuple[datetime, Decimal]],
             flows: list[tuple[datetime, Decimal]]) -> repo.Projection:
    """A portfolio's figures at a new price, by the same domain function as every write: the stored ledger state
    (without its lots, which a price does not touch), the midnights since the last tick after its last trade."""
    tail = [(day, price) for day, price in midnights if item.last_at is None or day > item.last_at]
    return figures_stored(item.state, item.ledger, item.shown_counts, market, tail, flows)


IRR_BATCH = 1000


async def refresh_due_irrs(connection: asyncpg.Connection) -> list[Message]:
    """The IRR of up to IRR_BATCH portfolios whose IRR is due, and a portfolio.updated for each."""
    due = await repo.irr_inputs(connection, IRR_BATCH)
    if not due:
        return []
    irrs = {item.portfolio_id: irr_at(item.flows, item.current_value_usd, item.as_of) for item in due}
    updates: list[Message] = []
    for row in await repo.store_irrs(connection, irrs):
        view = views.portfolio_view(row)
        updates.append(PortfolioUpdated(owner_id=view.owner_id, portfolio_id=view.portfolio_id, version=view.version,
                                        reason="irr_updated", portfolio=view, metrics=view.metrics))
    return updates
