"""Price answers and ticks: transactions priced or failed, and every portfolio moved to a new price."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

import structlog
from contracts.envelope import Message
from contracts.portfolios import TransactionStatus
from contracts.prices import CANDLE_OPEN, PriceResolved, PriceTicked, PriceUnavailable

from portfolio import repository as repo
from portfolio.domain import events as ev
from portfolio.domain.events import TransactionState
from portfolio.projection import TICK_CHUNK, commit_events, moved_to, refresh_metrics, updated_event
from portfolio.service import PortfolioService
from portfolio.unit_of_work import UnitOfWork

log = structlog.get_logger()
PriceAnswer: TypeAlias = PriceResolved | PriceUnavailable


def priced_event(transaction_id: str, price_usd: Decimal, hour: int, source: str) -> ev.TransactionPriced:
    return ev.TransactionPriced(transaction_id, price_usd, hour, source)


def pricing_failed_event(transaction_id: str, reason: str, detail: str) -> ev.TransactionPricingFailed:
    return ev.TransactionPricingFailed(transaction_id, reason, detail)


async def remember_open(service: PortfolioService, uow: UnitOfWork, hour: int | None, price: Decimal | None,
                        source: str | None) -> None:
    """A finished candle's open the price service answered with goes into the replica of hourly opens."""
    if service.hours is not None and hour is not None and price is not None and source == CANDLE_OPEN:
        market = await uow.market()
        service.hours.remember(hour, price, market.hour if market is not None else None)


def awaits_answer(tx: TransactionState | None, request_id: str | None) -> bool:
    """Only the answer to a pending transaction's latest request counts; an outdated one is ignored."""
    return tx is not None and tx.price_request_id == request_id and tx.status == TransactionStatus.PENDING


async def apply_price_answer(service: PortfolioService, uow: UnitOfWork, answer: PriceResolved | PriceUnavailable
                             ) -> list[Message]:
    """Mark the transaction priced or failed; an answer to an outdated request is ignored."""
    if isinstance(answer, PriceResolved) and answer.schema_version == 2:
        return await apply_price_answers(service, uow, answer)
    transaction_id: str = answer.transaction_id  # type: ignore[assignment]
    state = await uow.repo.load_state_of_transaction(uow.connection, transaction_id, uow.stored,
                                                     portfolio_id=answer.portfolio_id, locked=uow.locked)
    tx = state.transactions[transaction_id] if state is not None else None
    if state is None or tx is None or not awaits_answer(tx, answer.causation_id):
        log.info("price_answer_ignored", transaction_id=transaction_id)
        return []
    if isinstance(answer, PriceResolved):
        event = priced_event(transaction_id, answer.price_usd, answer.hour, answer.source)  # type: ignore[arg-type]
        await remember_open(service, uow, answer.hour, answer.price_usd, answer.source)
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
    state = await uow.repo.load_state(uow.connection, answer.portfolio_id, None, ids, stored=uow.stored,
                                      locked=uow.locked) \
        if answer.portfolio_id else None
    if state is None:
        log.info("price_answers_ignored", portfolio_id=answer.portfolio_id)
        return []
    events, touched, priced_keys = [], [], []
    for item in answer.resolved:
        tx = state.transactions.get(item.transaction_id)
        await remember_open(service, uow, item.hour, item.price_usd, item.source)
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
                                    changed_from=min(priced_keys, default=None), only_counts=not priced_keys,
                                    newly_priced=len(priced_keys))
    outgoing: list[Message] = [updated_event(state, metrics, answer, "transactions_priced")]
    uow.publish(outgoing)
    return outgoing


async def apply_price_tick(service: PortfolioService, uow: UnitOfWork, tick: PriceTicked) -> int:
    """Move every portfolio to the new price, with the midnights passed since the last tick, in chunks: one read
    and one write a chunk, every figure (IRR included) from the domain, one portfolio.updated each."""
    connection = uow.connection
    before = await uow.market()
    if not await uow.repo.save_market(connection, tick.hour, tick.price_usd, tick.as_of):
        return 0
    uow.forget_market()
    newest = datetime.fromtimestamp(tick.hour, UTC)
    if tick.open_usd is not None and tick.hour % 86400 == 0:
        await uow.repo.store_daily_opens(connection, [(newest, tick.open_usd)])
        service.opens.remember(newest, tick.open_usd)
    # a catch-up may pass several midnights at once; the last tick's own hour was folded then
    since = datetime.fromtimestamp(before.hour, UTC) if before is not None else newest - timedelta(hours=1)
    if not await service.opens.ensure(connection, since, newest):
        await uow.repo.mark_for_repair(connection, since)
    market = repo.Market(tick.hour, tick.price_usd, tick.as_of)
    midnights = service.opens.between(since, newest)
    moved = 0
    await uow.repo.lock_all_portfolios(connection)
    async for chunk in uow.repo.tick_inputs(connection, TICK_CHUNK):
        flows = await uow.repo.counted_cash_flows(connection, [item.state.portfolio_id for item in chunk])
        moved_figures = [moved_to(item, market, midnights, flows[item.state.portfolio_id]) for item in chunk]
        await uow.repo.store_tick_figures(connection, moved_figures)
        uow.publish([updated_event(item.state, projection.metrics, tick, "price_ticked")
                     for item, projection in zip(chunk, moved_figures, strict=True)])
        moved += len(chunk)
    return moved
