"""The portfolio service on the bus: commands (request/reply), price answers and ticks, and the outbox relay."""

import asyncio
import math
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import asyncpg
import structlog
from contracts.envelope import Message
from contracts.faststream_support import AttemptPolicy, IncomingMessage, routing_key_of, within_attempts
from contracts.faststream_support import dead_letter as park
from contracts.observability import bind_correlation
from contracts.portfolios import OwnedCommand
from contracts.prices import PriceRequested, PriceResolved, PriceTicked, PriceUnavailable, combine_price_requests
from contracts.topology import PORTFOLIO_PRICE_EVENTS, QueueSpec
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitQueue, RabbitRouter
from prometheus_client import Counter, Gauge, Histogram

from contracts import ContractError, Reply, decode, names
from portfolio import handlers
from portfolio import repository as repo
from portfolio.service import PortfolioService

log = structlog.get_logger()
T = TypeVar("T")
MESSAGES = Counter("portfolio_messages_total", "Messages handled", ["queue", "outcome"])
HANDLER_SECONDS = Histogram("portfolio_handler_seconds", "Time to handle one message", ["queue"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
OUTBOX_PUBLISHED = Counter("portfolio_outbox_published_total", "Outbox messages published")
OUTBOX_LAG = Gauge("portfolio_outbox_depth", "Outbox messages waiting to be published")
BATCH_SIZE = Histogram("portfolio_write_batch_size", "Messages handled in one database transaction",
                       buckets=(1, 2, 5, 10, 20, 50, 100))
OUTAGES = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
           asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.TransactionRollbackError)
"""Failures of the infrastructure or of timing (a deadlock between two copies), not of the message: retried
until they pass, never dead-lettered."""
OUTAGE_BACKOFF_SECONDS = 1.0
PRICE_EVENTS = {names.PRICE_RESOLVED: PriceResolved, names.PRICE_UNAVAILABLE: PriceUnavailable,
                names.PRICE_TICKED: PriceTicked}


def existing_queue(spec: QueueSpec) -> RabbitQueue:
    return RabbitQueue(spec.name, durable=True, arguments=spec.arguments, declare=False)


async def dead_letter(broker: RabbitBroker, spec: QueueSpec, message: IncomingMessage, reason: str) -> None:
    MESSAGES.labels(spec.name, "dead_lettered").inc()
    await park(broker, spec.name, message, reason)


@dataclass
class WriteLane:
    waiting: deque[tuple[Message, "asyncio.Future[handlers.Handled]"]] = field(default_factory=deque)
    has_work: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ParkedAnswers:
    """A window: single price answers of one portfolio waiting to be applied together, unacknowledged (a crash
    meanwhile loses nothing: the broker delivers them again)."""

    closes_at: float
    items: list[tuple[Message, "asyncio.Future[handlers.Handled]"]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


def answered_portfolio(message: Message) -> str | None:
    """The portfolio of a single price answer (those may wait to be applied together)."""
    if isinstance(message, PriceResolved | PriceUnavailable) and message.schema_version == 1:
        return message.portfolio_id
    return None


WINDOW_PER_FOLD = 8
"""A window of price answers stays open this many times as long as its portfolio's last batch of answers took, so
folding takes at most about a ninth of the lane's time, however large the portfolio grows."""


class WriteBatcher:
    """Every write of this copy (commands, price answers, ticks) goes through a batch.

    Messages are spread over a few lanes by portfolio. A lane's batch is one database transaction over whatever
    arrived while its previous one ran, so under load one
    commit, one event append and one outbox write serve many messages, and at low load a message waits for
    nothing. Each message's handler awaits its own result, so it is acked (or replied to) only after the
    commit. A batch that fails as a whole is retried one message at a time, to find the one at fault.

    Price answers of one portfolio that follow each other are coalesced into windows: a fold of the ledger from
    the earliest trade changed costs O(trades after it), so a stream of back-dated answers (trades posted one by
    one at shuffled times) is folded once per window instead of once per answer. A back-dated answer that follows
    another of its portfolio within a window's length opens a window (a lone answer, and one that extends the
    timeline, an O(1) append, never wait: trades posted in time order keep their latency); the window closes after
    its length, or at `limit` answers, and its answers run in one batch: one fold. Its length is WINDOW_PER_FOLD
    times what the portfolio's last batch of answers took, at least `linger_seconds`, at most `coalesce_seconds`."""

    def __init__(self, service: PortfolioService, relay: "OutboxRelay", limit: int = 100, lanes: int = 2,
                 linger_seconds: float = 0.1, coalesce_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service, self.relay, self.limit, self.linger_seconds = service, relay, limit, linger_seconds
        self.coalesce_seconds, self.clock = max(coalesce_seconds, linger_seconds), clock
        self.lanes = [WriteLane() for _ in range(lanes)]
        self.parked: dict[str, ParkedAnswers] = {}
        self.last_answer_at: dict[str, float] = {}
        self.answers_took: dict[str, float] = {}
        """Seconds the last batch holding single answers of the portfolio took."""
        self.latest_answered: dict[str, datetime] = {}
        """The latest trade time answered per portfolio: an answer before it is back-dated (a fold, not an append)."""
        BATCH_SIZE.observe(0)

    def lane_of(self, message: Message) -> "WriteLane":
        """One portfolio's messages always share a lane, so two lanes never wait on each other's rows."""
        key = getattr(message, "portfolio_id", None) or getattr(message, "owner_id", None) or message.message_id
        return self.lanes[zlib.crc32(key.encode()) % len(self.lanes)]

    async def submit(self, message: Message) -> handlers.Handled:
        future: asyncio.Future[handlers.Handled] = asyncio.get_running_loop().create_future()
        portfolio_id = answered_portfolio(message)
        if portfolio_id is not None and self.linger(portfolio_id, message.at):  # type: ignore[attr-defined]
            self.park(portfolio_id, message, future)
        else:
            self.enqueue([(message, future)])
        return await future

    def enqueue(self, items: list[tuple[Message, "asyncio.Future[handlers.Handled]"]]) -> None:
        lane = self.lane_of(items[0][0])
        lane.waiting.extend(items)
        lane.has_work.set()

    def window_seconds(self, portfolio_id: str) -> float:
        took = WINDOW_PER_FOLD * self.answers_took.get(portfolio_id, 0.0)
        return min(self.coalesce_seconds, max(self.linger_seconds, took))

    def linger(self, portfolio_id: str, at: datetime | None) -> bool:
        """Whether a price answer waits for more of its portfolio's: a back-dated one (earlier than an answer this
        copy applied before) does when another came within a window's length or a window is open. A lone answer,
        and one later than all before it (an O(1) append to the ledger), go straight on."""
        now = self.clock()
        recent = now - self.last_answer_at.get(portfolio_id, -math.inf) < self.window_seconds(portfolio_id)
        self.last_answer_at[portfolio_id] = now
        latest = self.latest_answered.get(portfolio_id)
        back_dated = at is None or (latest is not None and at < latest)
        if at is not None and not back_dated:
            self.latest_answered[portfolio_id] = at
        if len(self.last_answer_at) > 10_000:
            self.last_answer_at = {k: t for k, t in self.last_answer_at.items() if now - t < self.coalesce_seconds}
            self.answers_took = {k: t for k, t in self.answers_took.items() if k in self.last_answer_at}
            self.latest_answered = {k: t for k, t in self.latest_answered.items() if k in self.last_answer_at}
        return back_dated and (recent or portfolio_id in self.parked)

    def park(self, portfolio_id: str, message: Message, future: "asyncio.Future[handlers.Handled]") -> None:
        group = self.parked.get(portfolio_id)
        if group is None:
            wait = self.window_seconds(portfolio_id)
            group = self.parked[portfolio_id] = ParkedAnswers(closes_at=self.clock() + wait)
            self.arm(portfolio_id, group, wait)
        group.items.append((message, future))
        if len(group.items) >= self.limit:
            self.release(portfolio_id)

    def arm(self, portfolio_id: str, group: ParkedAnswers, delay: float) -> None:
        group.timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self.due, portfolio_id)

    def due(self, portfolio_id: str) -> None:
        """The window's timer: release it once it has closed (by the clock that set it)."""
        group = self.parked.get(portfolio_id)
        if group is None:
            return
        wait = group.closes_at - self.clock()
        if wait > 0.001:
            self.arm(portfolio_id, group, wait)
        else:
            self.release(portfolio_id)

    def release(self, portfolio_id: str) -> None:
        group = self.parked.pop(portfolio_id, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        if group.items:
            self.enqueue(group.items)

    async def run(self) -> None:
        await asyncio.gather(*(self.run_lane(lane) for lane in self.lanes))

    async def run_lane(self, lane: "WriteLane") -> None:
        """Batches of one lane, one after another; lanes overlap one another's waits on Postgres."""
        while True:
            await lane.has_work.wait()
            batch = [lane.waiting.popleft() for _ in range(min(self.limit, len(lane.waiting)))]
            if not lane.waiting:
                lane.has_work.clear()
            BATCH_SIZE.observe(len(batch))
            started = self.clock()
            await self.run_batch(batch)
            took = self.clock() - started
            for portfolio_id in {answered_portfolio(message) for message, _ in batch} - {None}:
                self.answers_took[portfolio_id] = took  # type: ignore[index]

    async def run_batch(self, batch: list[tuple[Message, "asyncio.Future[handlers.Handled]"]]) -> None:
        try:
            results = await handlers.run_batch(self.service, [message for message, _ in batch])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if len(batch) == 1 or isinstance(error, OUTAGES):
                results = [error] * len(batch)
            else:
                for item in batch:
                    await self.run_batch([item])
                return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class OutboxRelay:
    """Publishes committed outbox rows with confirms, many in flight.

    A batch hands over the rows it committed (`committed`), which leave at once, or, when rows left less than
    `linger_seconds` ago, once that time is up, with the price requests of the batches that committed meanwhile in
    one message (`combined`); they are deleted after their confirms, with no query to find them. The relay also
    polls for rows that nobody published (the broker was down, or the process died between commit and publish):
    only rows older than `orphan_seconds`, so it does not race a writer still publishing; copies share them
    through SKIP LOCKED. A row published twice (a writer slower
    than that) is a duplicate that its consumer's inbox ignores, and a request answered twice is priced once (the
    second answer finds its trade priced)."""

    def __init__(self, service: PortfolioService, broker: RabbitBroker, batch: int = 500,
                 orphan_seconds: float = 2.0, linger_seconds: float = 0.0) -> None:
        self.service, self.broker, self.batch, self.orphan_seconds = service, broker, batch, orphan_seconds
        self.linger_seconds = linger_seconds
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.publishing: set[asyncio.Task[None]] = set()
        self.lingering: list[repo.OutboxRow] = []
        self.linger_timer: asyncio.TimerHandle | None = None
        self.flushed_at = -math.inf

    def stop(self) -> None:
        """Finish the batch in hand, then return: a publish cancelled mid-call closes the broker's channel."""
        self.stopping.set()
        self.flush_lingering()
        self.wake.set()

    def committed(self, rows: list[repo.OutboxRow]) -> None:
        """Rows leave at once when none left within `linger_seconds` (a lone trade waits for nothing); otherwise
        at the end of that time, with whatever else committed meanwhile."""
        if not rows or self.stopping.is_set():
            return
        self.lingering.extend(rows)
        if self.linger_timer is not None:
            return
        wait = self.flushed_at + self.linger_seconds - time.monotonic()
        if wait <= 0:
            self.flush_lingering()
        else:
            self.linger_timer = asyncio.get_running_loop().call_later(wait, self.flush_lingering)

    def flush_lingering(self) -> None:
        if self.linger_timer is not None:
            self.linger_timer.cancel()
        rows, self.lingering, self.linger_timer = self.lingering, [], None
        self.flushed_at = time.monotonic()
        if rows:
            task = asyncio.create_task(self.publish_committed(rows))
            self.publishing.add(task)
            task.add_done_callback(self.publishing.discard)

    async def publish_committed(self, rows: list[repo.OutboxRow]) -> None:
        try:
            await self.publish(rows)
            await repo.delete_outbox(self.service.pool, [row.id for row in rows])
        except Exception as error:  # the rows stay; the poll publishes them
            log.warning("outbox_publish_deferred", rows=len(rows), reason=repr(error))

    async def publish(self, rows: list[repo.OutboxRow]) -> None:
        await asyncio.gather(*(
            self.broker.publish(row.body, exchange=row.exchange, routing_key=row.routing_key,
                                message_id=row.message_id, correlation_id=row.correlation_id,
                                content_type="application/json", persist=True)
            for row in combined(rows)))
        OUTBOX_PUBLISHED.inc(len(rows))

    async def publish_batch(self) -> int:
        async with self.service.pool.acquire() as connection, connection.transaction():
            rows = await repo.take_outbox(connection, self.batch, self.orphan_seconds)
            if not rows:
                return 0
            await self.publish(rows)
            await repo.delete_outbox(connection, [row.id for row in rows])
        return len(rows)

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if await self.publish_batch() == self.batch:
                    continue
                OUTBOX_LAG.set(await self.service.pool.fetchval("SELECT count(*) FROM outbox"))
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox_relay_failed")
                await asyncio.sleep(1)
        if self.publishing:
            await asyncio.wait(self.publishing)


def combined(rows: list[repo.OutboxRow]) -> list[repo.OutboxRow]:
    """The rows to publish, with their price requests of many portfolios merged into as few messages as fit
    (contracts.prices.combine_price_requests); the merged ones stand for rows they came from, which are deleted
    after the confirms as usual. A row that cannot be read leaves as it is."""
    requests = [row for row in rows if row.routing_key == names.PRICE_REQUESTED]
    if len(requests) < 2:
        return rows
    try:
        merged = combine_price_requests([decode(PriceRequested, row.body) for row in requests])
    except ContractError:
        return rows
    exchange = requests[0].exchange
    return [row for row in rows if row.routing_key != names.PRICE_REQUESTED] + [
        repo.OutboxRow(0, exchange, m.publish_key, m.message_id, m.correlation_id, m.to_json()) for m in merged]


async def decoded(broker: RabbitBroker, spec: QueueSpec, message: IncomingMessage,
                  models: Mapping[str, type[Message]]) -> tuple[Message | None, str]:
    """The message as its contract model, or (None, reason) after parking it in the queue's DLQ."""
    routing_key = routing_key_of(message)
    try:
        model = models.get(routing_key)
        if model is None:
            raise ContractError(f"nothing on {spec.name} is named {routing_key!r}")
        return decode(model, message.body), ""
    except ContractError as error:
        await dead_letter(broker, spec, message, str(error))
        return None, str(error)


async def guarded(broker: RabbitBroker, spec: QueueSpec, message: IncomingMessage,
                  work: Callable[[], Awaitable[T]], policy: AttemptPolicy) -> tuple[bool, T | None]:
    """Run a handler: an outage is retried (requeued) until it passes; any other failure is retried up to the
    policy's attempts, then the message is dead-lettered with the reason and (False, None) returned."""
    handled, result = await within_attempts(broker, spec.name, message, work, policy)
    if not handled:
        MESSAGES.labels(spec.name, "dead_lettered").inc()
    return handled, result


async def run_command(service: PortfolioService, writer: WriteBatcher, command: OwnedCommand) -> Reply:
    """Reads run at once on the pool; writes join the next batch."""
    if type(command) in handlers.READS:
        reply, _ = await handlers.handle_command(service, command)
        return reply
    return (await writer.submit(command)).reply  # type: ignore[return-value]


async def submit_price_event(writer: WriteBatcher, event: Message) -> handlers.Handled:
    """A batch answer of many portfolios is applied as the single answers it stands for, each in its portfolio's
    lane (their ids derive from the batch's, so a redelivery is seen by the inbox); acked once all committed."""
    if not (isinstance(event, PriceResolved) and event.many_portfolios):
        return await writer.submit(event)
    results = await asyncio.gather(*(writer.submit(single) for single in event.singles()), return_exceptions=True)
    failed = next((result for result in results if isinstance(result, BaseException)), None)
    if failed is not None:
        raise failed
    return handlers.Handled()


def attempt_policy(max_attempts: int) -> AttemptPolicy:
    return AttemptPolicy(max_attempts=max_attempts, outages=OUTAGES, outage_backoff_seconds=OUTAGE_BACKOFF_SECONDS)


def build_router(service: PortfolioService, broker: RabbitBroker, writer: WriteBatcher,
                 max_attempts: int = 3) -> RabbitRouter:
    """The price events' subscriber (the commands have their own lean consumer: command_queue)."""
    router = RabbitRouter()
    policy = attempt_policy(max_attempts)

    @router.subscriber(existing_queue(PORTFOLIO_PRICE_EVENTS), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_price_event(message: IncomingMessage) -> None:
        """price.resolved / price.unavailable / price.ticked; each applied once (inbox), acked after commit."""
        with HANDLER_SECONDS.labels(PORTFOLIO_PRICE_EVENTS.name).time():
            event, _ = await decoded(broker, PORTFOLIO_PRICE_EVENTS, message, PRICE_EVENTS)
            if event is None:
                return
            bind_correlation(event.correlation_id, event=event.routing_key)
            handled, result = await guarded(broker, PORTFOLIO_PRICE_EVENTS, message,
                                            lambda: submit_price_event(writer, event), policy)
            if isinstance(event, PriceTicked) and result is not None:
                log.info("price_ticked_applied", portfolios=result.moved, price=str(event.price_usd))
            MESSAGES.labels(PORTFOLIO_PRICE_EVENTS.name, event.routing_key if handled else "dead_lettered").inc()

    return router
