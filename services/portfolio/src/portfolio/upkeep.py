"""Projection upkeep after commit: each changed portfolio's IRR, and ledgers that missed midnight prices."""

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from portfolio import projection
from portfolio import repository as repo
from portfolio.service import PortfolioService
from portfolio.unit_of_work import UnitOfWork

log = structlog.get_logger()
IRR_DUTY = 4
"""The IRR pass waits this many times as long as its last batch took: at most a fifth of the time goes to it (a
portfolio of 3,000 trades written without pause gets its IRR about every 0.4 s)."""


@dataclass
class Upkeep:
    """Polls for portfolios whose IRR is due (a write or a tick changed them) and for ledgers to repair.

    The IRR needs every cash flow of a portfolio, so it is not computed per write: a burst of writes to one
    portfolio (an import) costs one IRR per pass, and the write path stays O(1). Until the pass runs (well within a
    second) the stored IRR is the previous one; each pass publishes portfolio.updated with the new figure."""

    service: PortfolioService
    idle_seconds: float = 0.25
    repair_every_seconds: float = 5.0
    repair_retry_seconds: float = 30.0
    retry_repair_at: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        next_repair = 0.0
        while True:
            started = time.monotonic()
            try:
                refreshed = await self.refresh_irrs()
                if started >= next_repair:
                    await self.repair_ledgers()
                    next_repair = started + self.repair_every_seconds
            except asyncio.CancelledError:
                raise
            except Exception:  # an outage: the due rows stay due and the next pass takes them
                log.exception("upkeep_failed")
                refreshed = 0
            # a busy portfolio gets its IRR at most once per IRR_DUTY times what computing it takes: the IRR needs
            # every cash flow, so at thousands of trades it would otherwise take half a core from the writes
            # (a full batch means more are due: those go on at the old pace)
            duty = 1 if refreshed >= projection.IRR_BATCH else IRR_DUTY
            await asyncio.sleep(max(self.idle_seconds if not refreshed else 0.05,
                                    duty * (time.monotonic() - started)))

    async def refresh_irrs(self) -> int:
        """One batch of due IRRs in one transaction; returns how many portfolios it updated."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            updates = await projection.refresh_due_irrs(connection)
        await self.service.notify(updates)
        return len(updates)

    async def repair_ledgers(self) -> None:
        """Recompute the ledgers that missed midnight prices, now that the price service may give them."""
        now = time.monotonic()
        for portfolio_id in await repo.repairs_due(self.service.pool, 100):
            if self.retry_repair_at.get(portfolio_id, 0.0) > now:
                continue
            async with self.service.pool.acquire() as connection, connection.transaction():
                uow = UnitOfWork(connection)
                state = await repo.load_state(connection, portfolio_id, None, stored=uow.stored)
                if state is None or state.repair_from is None:
                    continue
                metrics = await projection.refresh_metrics(self.service, uow, state)
                if state.repair_from is not None:
                    self.retry_repair_at[portfolio_id] = now + self.repair_retry_seconds
                    continue
                self.retry_repair_at.pop(portfolio_id, None)
            await self.service.notify([projection.updated_event(state, metrics, None, "midnights_repaired")])
            log.info("ledger_repaired", portfolio_id=portfolio_id)
