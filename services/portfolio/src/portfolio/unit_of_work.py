"""One database transaction shared by a batch of messages.

What every message adds is written once, at the end: the events (the only moment the global position row is locked), the outbox rows, the
inbox replies. One commit then covers the whole batch. A message may run in a savepoint (`savepoint()`), so
that its failure undoes only its own writes.
"""

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
from contracts.envelope import Message
from contracts.prices import combine_price_requests

from contracts import names
from portfolio import repository as repo
from portfolio.cash_flows import CashFlowMemo, Flows
from portfolio.event_log import NewEvent, PendingAppend

UNREAD = object()


class UnitOfWork:
    def __init__(self, connection: asyncpg.Connection, repository: Any = repo) -> None:
        self.connection = connection
        self.repo = repository
        """Where the handlers load and save: the `repository` module over `connection`, or a fake in unit tests."""
        self.appends: list[PendingAppend] = []
        self.outgoing: list[Message] = []
        self.replies: dict[str, bytes] = {}
        self.released: list[str] = []
        self.enqueued: list[repo.OutboxRow] = []
        """The outbox rows the batch wrote; once it has committed, its writer publishes them."""
        self.stored: dict[str, repo.StoredFigures] = {}
        """Ledgers and metrics read with the portfolios' headers, taken by the metrics that follow."""
        self._market: Any = UNREAD
        self.cause: Message | None = None
        """The message being handled: what a change it causes in another portfolio (a transfer's lots) cites."""
        self.changing: dict[str, Any] = {}
        """The portfolios (id → PortfolioState) the message being handled has appended events to: a transfer's
        other portfolio, changed on the way, must be changed through the same state (its version and counts)."""
        self.unwritten: dict[str, tuple[Any, list[str]]] = {}
        """New trades priced as they were recorded, whose rows wait for their figures (portfolio id → its state and
        their ids): written with them by the metrics in one statement, before anything reads the portfolio's
        transactions (`write_rows`), or at the latest by `flush`."""
        self.outcomes: dict[str, Any] = {}
        """The figures (TradeOutcome) of the trades the batch's ledgers counted, as stored by save_outcomes."""
        self.locked: dict[str, asyncpg.Record] = {}
        """Headers of the batch's portfolios, locked up front; each is taken by the first message that loads it."""
        self.market_holds = False
        """Whether the price read now holds until commit (see lock_portfolios)."""
        self.versions_before: dict[str, int] = {}
        """Each changed portfolio's version before the batch changed it: the version its remembered flows are of."""
        self.flows: dict[str, tuple[Any, Flows | None]] = {}
        """The cash flows each portfolio's figures were last computed with in this batch (its state, and None where
        they were not read), for the memo once the batch has committed (`flows_written`)."""

    def begin(self, message: Message) -> None:
        """A new message of the batch: what it changes is its own."""
        self.cause, self.changing = message, {}

    async def lock_portfolios(self, portfolio_ids: list[str]) -> None:
        """Lock the batch's portfolios in one statement. A tick locks every portfolio before it writes the price,
        so once this batch holds one, no tick can commit before it: the latest price is read once for the batch
        instead of once a message."""
        self.locked = await self.repo.lock_portfolios(self.connection, portfolio_ids) if portfolio_ids else {}
        self.market_holds = bool(self.locked)

    async def market(self) -> repo.Market | None:
        """The latest price, read once per unit (a tick in the same unit forgets it)."""
        if self._market is UNREAD:
            self._market = await self.repo.market(self.connection)
        return self._market  # type: ignore[no-any-return]

    def forget_market(self) -> None:
        self._market = UNREAD

    def before_message(self) -> None:
        """Each message reads the latest price again after it has locked its portfolio (a tick that another copy
        committed since an earlier message must not be undone by metrics at the price before it), unless the
        batch's locks already keep every tick out."""
        if not self.market_holds:
            self.forget_market()

    def before_tick(self) -> None:
        """A tick rewrites every portfolio and the price: the headers read up front are stale after it."""
        self.locked.clear()
        self.market_holds = False
        self.forget_market()

    def stage(self, stream_id: str, expected_version: int, events: list[NewEvent], metadata: dict[str, Any],
              recorded_at: datetime) -> None:
        self.appends.append(PendingAppend(stream_id, expected_version, events, metadata, recorded_at))

    def publish(self, messages: list[Message]) -> None:
        self.outgoing.extend(messages)

    def release(self, message_id: str) -> None:
        """Give back a claimed message id: the message failed and its redelivery must run it again."""
        self.released.append(message_id)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """One message's work: on any failure its writes, staged events, outgoing messages, rows waiting to be
        written, figures and cash flows are undone."""
        appends, outgoing, flows = len(self.appends), len(self.outgoing), dict(self.flows)
        unwritten = {key: (state, list(ids)) for key, (state, ids) in self.unwritten.items()}
        outcomes = dict(self.outcomes)
        try:
            async with self.connection.transaction():
                yield
        except BaseException:
            del self.appends[appends:]
            del self.outgoing[outgoing:]
            self.flows, self.unwritten, self.outcomes = flows, unwritten, outcomes
            raise

    def known_flows(self, portfolio_id: str, memo: CashFlowMemo) -> Flows | None:
        """The portfolio's cash flows as its figures stand now in this batch, if known without a read."""
        if portfolio_id in self.flows:
            return self.flows[portfolio_id][1]
        return memo.at(portfolio_id, self.versions_before.get(portfolio_id))

    def flows_written(self) -> dict[str, tuple[int, Flows | None]]:
        """Each portfolio's version and cash flows as the batch leaves them (for CashFlowMemo.committed)."""
        return {portfolio_id: (state.version, flows) for portfolio_id, (state, flows) in self.flows.items()}

    def defer_rows(self, state: Any, transaction_ids: list[str]) -> None:
        """Write these new transactions' rows with their figures, once the metrics have them."""
        self.unwritten.setdefault(state.portfolio_id, (state, []))[1].extend(transaction_ids)

    def take_rows(self, portfolio_id: str) -> list[tuple[Any, ...]]:
        """The portfolio's unwritten rows, with their figures where the ledger counted them; the caller writes them."""
        state, ids = self.unwritten.pop(portfolio_id, (None, []))
        return [repo.transaction_row(portfolio_id, state.transactions[tx])
                + (repo.outcome_figures(self.outcomes[tx]) if tx in self.outcomes else repo.NO_FIGURES)
                for tx in ids if tx in state.transactions]

    async def write_rows(self, portfolio_id: str | None = None) -> None:
        """Write the unwritten rows (of one portfolio, or all) now: something is about to read them."""
        for key in [portfolio_id] if portfolio_id is not None else list(self.unwritten):
            rows = self.take_rows(key)
            if rows:
                await self.repo.insert_transactions(self.connection, rows)

    @property
    def notifications(self) -> list[Message]:
        """What the caller publishes once the batch has committed (not through the outbox)."""
        return [message for message in self.outgoing if message.notification]

    async def flush(self) -> None:
        """Write what the batch added, in one statement; the caller commits right after. Only persistent messages
        take the outbox, the batch's price requests as one (an answer for the batch's trades instead of one a
        trade)."""
        await self.write_rows()
        persistent = [message for message in self.outgoing if not message.notification]
        self.enqueued = await self.repo.write_batch(self.connection, names.EVENTS_EXCHANGE,
                                                    combine_price_requests(persistent), self.replies, self.released,
                                                    self.appends)
