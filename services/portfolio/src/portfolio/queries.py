"""One function per query: read the projections, never write."""

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from contracts.portfolios import (
    CostBasisMethod,
    ExportFile,
    ExportTransactions,
    GetHistory,
    GetPortfolio,
    GetTaxReport,
    GetTransaction,
    History,
    HistoryPoint,
    Interval,
    ListPortfolios,
    ListTransactions,
    OwnedCommand,
    PortfolioList,
    PortfolioView,
    Side,
    TransactionPage,
)
from contracts.types import EARLIEST_TIME
from pydantic import BaseModel

from portfolio import repository as repo
from portfolio import views
from portfolio.domain import (
    DomainError,
    Trade,
    export_transactions_csv,
    report_method,
    tax_report_csv,
    tax_year,
    value_history,
)
from portfolio.service import PortfolioService, not_found, transaction_not_found


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
        moved_costs = await repo.moved_costs(connection, command.portfolio_id)
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
    points = value_history(trades, moments, moved_costs)
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
    # a transfer is not a trade of the generic format (it would import back as a buy or a sell): JSON has them
    trades = [Trade(r["transaction_id"], Side(r["side"]), r["amount_btc"], r["at"], r["fee_usd"], r["price_usd"],
                    r["sequence"]) for r in rows
              if (r["status"] != "failed" or r["price_usd"] is not None) and r["transfer_id"] is None]
    content = export_transactions_csv(trades, {r["transaction_id"]: r["note"] for r in rows})
    return ExportFile(format="csv", filename=f"{stem}.csv", content_type="text/csv", content=content)


async def get_tax_report(service: PortfolioService, command: GetTaxReport) -> BaseModel:
    """One read of the trades up to the year's end, folded by the pure domain; nothing is stored."""
    row = await repo.portfolio_row(service.pool, command.portfolio_id, command.owner_id)
    if row is None:
        raise not_found(command.portfolio_id)
    method = report_method(command.method, CostBasisMethod(row["method"]))
    year_end = datetime(command.year + 1, 1, 1, tzinfo=UTC) if command.year < 9999 else None
    priced, pending_sells_at = await repo.tax_inputs(service.pool, command.portfolio_id, year_end)
    report = tax_year(priced, method, command.year, pending_sells_at)
    if command.format == "csv":
        return ExportFile(format="csv", filename=f"bitfolio-{command.portfolio_id[:8]}-tax-{command.year}-"
                                                 f"{method.value}.csv", content_type="text/csv",
                          content=tax_report_csv(report))
    return views.tax_report_view(command.portfolio_id, report)


READS: dict[type[OwnedCommand], Callable[..., Awaitable[BaseModel]]] = {
    GetPortfolio: get_portfolio, ListPortfolios: list_portfolios, GetTransaction: get_transaction,
    ListTransactions: list_transactions, GetHistory: get_history, ExportTransactions: export_transactions,
    GetTaxReport: get_tax_report,
}
