"""Portfolio reads from the read model: a cold entry is read over request/reply once and kept, and a read right
after a write of the same portfolio waits briefly for that write's version (else it reads over request/reply)."""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog
from contracts.envelope import Message, describe_validation_error
from contracts.portfolios import (
    CreatePortfolio,
    DeletePortfolio,
    GetPortfolio,
    ListPortfolios,
    PortfolioCommand,
    PortfolioList,
    PortfolioUpdated,
    PortfolioView,
)
from prometheus_client import Counter, Gauge
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

from contracts import ContractError, Reply
from gateway.bus import Backend
from gateway.domain.read_model import Entry, PortfolioReadModel, Stamp
from gateway.errors import ApiError

log = structlog.get_logger()
READS = Counter("gateway_portfolio_reads_total", "Portfolio reads by where they were answered from",
                ["source"])
LIVE = Gauge("gateway_read_model_live", "1 while the event feed consumes and the read model keeps entries")
RESETS = Counter("gateway_read_model_resets_total", "Times the read model was emptied because its feed dropped")
ENTRIES = Gauge("gateway_read_model_entries", "Portfolios held by the read model (deleted ones included)")
T = TypeVar("T")
LIST_PAGE = 500
"""Portfolios per request/reply page while a whole list is loaded."""


def not_found(portfolio_id: str) -> ApiError:
    """The same answer the portfolio service gives, whether the portfolio is missing, deleted or someone else's."""
    return ApiError(404, "not_found", f"No portfolio {portfolio_id} was found.", {"portfolio_id": portfolio_id})


def entry_of(view: PortfolioView, stamp: Stamp) -> Entry:
    return Entry(view.portfolio_id, view.owner_id, stamp, view.created_at, view.model_dump_json().encode())


class FeedUpdate(BaseModel):
    """What the read model takes from a portfolio.updated: the envelope fields that order it, and the view as sent.

    The view is kept as the JSON the portfolio service wrote from the contract's PortfolioView, not validated field
    by field again (two events a trade, each with every figure as a Decimal: that was most of the feed's cost)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = 1
    owner_id: str
    portfolio_id: str
    version: int
    occurred_at: AwareDatetime
    deleted: bool = False
    portfolio: dict[str, Any] | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version not in PortfolioUpdated.supported_versions:
            raise ValueError(f"schema_version {version} of PortfolioUpdated is not supported by this reader")
        return version

    @classmethod
    def read(cls, body: bytes) -> "FeedUpdate":
        """The update in a message body, or ContractError with a readable reason."""
        try:
            update = cls.model_validate_json(body)
            if update.portfolio is not None:
                datetime.fromisoformat(update.portfolio["created_at"])  # the one field of the view a list orders by
        except ValidationError as error:
            raise ContractError(f"PortfolioUpdated refused: {describe_validation_error(error)}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise ContractError(f"PortfolioUpdated refused: portfolio.created_at: {error!r}") from error
        return update

    def entry(self) -> Entry:
        stamp = Stamp(self.version, True, self.occurred_at)
        if self.deleted or self.portfolio is None:
            return Entry(self.portfolio_id, self.owner_id, stamp, None, None)
        return Entry(self.portfolio_id, self.owner_id, stamp, datetime.fromisoformat(self.portfolio["created_at"]),
                     orjson.dumps(self.portfolio))


@dataclass(frozen=True)
class Page:
    body: bytes
    total: int


class PortfolioReads:
    def __init__(self, backend: Backend, capacity: int, write_wait_seconds: float) -> None:
        self.backend = backend
        self.model = PortfolioReadModel(capacity)
        self.write_wait_seconds = write_wait_seconds
        self.live = False
        """True while the event feed consumes; otherwise nothing is kept (any entry could miss an event)."""
        self.written: OrderedDict[str, int] = OrderedDict()
        """Portfolio id → the version a write answered, until the model holds it (bounded like the model)."""
        self.arrivals: dict[str, asyncio.Event] = {}
        self.loading: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        ENTRIES.set_function(lambda: len(self.model))
        """Reads over request/reply under way, so that concurrent reads of one cold key share one."""

    # ------------------------------------------------------------------ the feed's side
    def go_live(self) -> None:
        self.live = True
        LIVE.set(1)

    def go_cold(self) -> None:
        """The feed stopped: events may be missed from now on, so forget every entry and keep none."""
        self.live = False
        LIVE.set(0)
        RESETS.inc()
        self.model.clear()
        log.info("read_model_cold")

    def apply_update(self, update: FeedUpdate) -> None:
        self._keep(update.entry(), self.model.generation)

    def _keep(self, entry: Entry, generation: int) -> None:
        if not self.live or generation != self.model.generation or not self.model.put(entry):
            return
        if self.written.get(entry.portfolio_id, 0) <= entry.stamp.version:
            self.written.pop(entry.portfolio_id, None)
        arrived = self.arrivals.pop(entry.portfolio_id, None)
        if arrived is not None:
            arrived.set()

    # ------------------------------------------------------------------ the write side (Backend's watcher)
    def mark(self) -> int:
        return self.model.generation

    def answered(self, request: Message, reply: Reply, generation: int) -> None:
        """A write's answer: a view it returns is kept at once; otherwise its version is awaited by later reads."""
        version = reply.portfolio_version
        if version is None or not isinstance(request, PortfolioCommand | CreatePortfolio):
            return
        if isinstance(request, DeletePortfolio):
            self._keep(Entry(request.portfolio_id, request.owner_id, Stamp(version), None, None), generation)
        elif isinstance(reply.result, dict) and "metrics" in reply.result and "owner_id" in reply.result:
            self._keep(entry_of(PortfolioView.model_validate(reply.result), Stamp(version)), generation)
        if isinstance(request, PortfolioCommand):
            self.written[request.portfolio_id] = max(version, self.written.get(request.portfolio_id, 0))
            self.written.move_to_end(request.portfolio_id)
            while len(self.written) > self.model.capacity:
                self.written.popitem(last=False)

    # ------------------------------------------------------------------ reads
    def _current(self, entry: Entry, at_least: int = 0) -> bool:
        return entry.stamp.version >= max(self.written.get(entry.portfolio_id, 0), at_least)

    async def portfolio(self, owner_id: str, portfolio_id: str, at_least: int | None = None) -> bytes:
        """The portfolio's JSON, or a 404 when it is missing, deleted or another owner's; with `at_least`, at that
        version or later (waited for like a write's, then asked of the portfolio service)."""
        entry = self.model.get(portfolio_id) if self.live else None
        if entry is not None and not self._current(entry, at_least or 0):
            entry = await self._arrival(portfolio_id, at_least or 0)
        if entry is None:
            READS.labels("request_reply").inc()
            entry = await self._once(("portfolio", owner_id, portfolio_id), lambda: self._load(owner_id, portfolio_id))
        else:
            READS.labels("read_model").inc()
        if entry.owner_id != owner_id or entry.body is None:
            raise not_found(portfolio_id)
        return entry.body

    async def portfolios(self, owner_id: str, offset: int, limit: int) -> Page:
        """A page of the owner's portfolios, oldest first, and how many they have."""
        entries = self.model.owner_list(owner_id) if self.live else None
        if entries is not None and not all(self._current(entry) for entry in entries):
            behind = next(entry for entry in entries if not self._current(entry))
            entries = None if await self._arrival(behind.portfolio_id) is None else self.model.owner_list(owner_id)
            if entries is not None and not all(self._current(entry) for entry in entries):
                entries = None
        if entries is None:
            READS.labels("request_reply").inc()
            entries = await self._once(("list", owner_id), lambda: self._load_list(owner_id))
        else:
            READS.labels("read_model").inc()
        page = entries[offset:offset + limit]
        return Page(b"[" + b",".join(entry.body for entry in page if entry.body) + b"]", len(entries))

    async def _arrival(self, portfolio_id: str, at_least: int = 0) -> Entry | None:
        """The entry once it holds the version written, if that happens within the wait; else None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_wait_seconds
        while (remaining := deadline - loop.time()) > 0:
            arrived = self.arrivals.setdefault(portfolio_id, asyncio.Event())
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                break
            entry = self.model.get(portfolio_id)
            if entry is not None and self._current(entry, at_least):
                return entry
        return None

    async def _once(self, key: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        """One request/reply for concurrent reads of the same cold key; each caller gets its outcome."""
        pending = self.loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self.loading[key] = pending
            pending.add_done_callback(lambda _: self.loading.pop(key, None))
        return await asyncio.shield(pending)

    async def _load(self, owner_id: str, portfolio_id: str) -> Entry:
        generation = self.model.generation
        view = await self.backend.ask_as(GetPortfolio(owner_id=owner_id, portfolio_id=portfolio_id), PortfolioView)
        entry = entry_of(view, Stamp(view.version))
        self._keep(entry, generation)
        held = self.model.get(portfolio_id) if self.live else None
        return held if held is not None and held.stamp > entry.stamp else entry

    async def _load_list(self, owner_id: str) -> list[Entry]:
        generation = self.model.generation
        entries: list[Entry] = []
        while True:
            page = await self.backend.ask_as(ListPortfolios(owner_id=owner_id, offset=len(entries), limit=LIST_PAGE),
                                             PortfolioList)
            entries += [entry_of(view, Stamp(view.version)) for view in page.items]
            if not page.items or len(entries) >= page.total:
                break
        if self.live and generation == self.model.generation:
            self.model.put_owner_list(owner_id, entries)
            return self.model.owner_list(owner_id) or entries
        return entries
