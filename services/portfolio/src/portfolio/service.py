"""What every handler is given (the pool and the price source) and returns (an outcome to publish after commit)."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
from contracts.envelope import Message
from pydantic import BaseModel

from portfolio.cash_flows import CashFlowMemo
from portfolio.domain import NotFound
from portfolio.market_data import DailyOpens, HourlyOpens, PriceSource

if TYPE_CHECKING:
    from portfolio.repository import OutboxRow


def utc_now() -> datetime:
    return datetime.now(UTC)


async def no_notifications(_: Iterable[Message]) -> None:
    """Where nothing listens (tools, the replay): notifications are dropped."""


@dataclass
class PortfolioService:
    pool: asyncpg.Pool
    prices: PriceSource
    opens: DailyOpens = field(init=False)
    hours: HourlyOpens | None = None
    """The replica of hourly opens that prices a trade as it is recorded (None: every trade asks the price
    service with price.requested)."""
    clock: Callable[[], datetime] = utc_now
    notify: Callable[[Iterable[Message]], Awaitable[None]] = no_notifications
    """Publishes notifications (portfolio.updated) after their commit: transient, unconfirmed, no outbox."""
    committed_outbox: Callable[[list["OutboxRow"]], None] = lambda rows: None
    """Told of the outbox rows a batch committed, so that they are published at once (the relay, which polls,
    otherwise takes them)."""

    cash_flows: CashFlowMemo = field(default_factory=CashFlowMemo)
    """The IRR's cash flows of the portfolios written last, as of their version (a trade appended needs no read)."""

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
