"""The price service on the bus: answers price.requested and the price queries; dead-letters poison."""

import asyncio
from collections import deque

import asyncpg
import structlog
from contracts.envelope import Message
from contracts.faststream_support import AttemptPolicy, IncomingMessage, routing_key_of, within_attempts
from contracts.faststream_support import dead_letter as park
from contracts.observability import bind_correlation
from contracts.prices import LatestPriceRequested, PriceAtRequested, PriceRangeRequested, PriceRequested
from contracts.topology import PRICE_QUERIES, PRICE_REQUESTS, QueueSpec
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitQueue, RabbitRouter
from prometheus_client import Counter, Histogram

from contracts import ContractError, ErrorCode, Reply, decode, names
from price import handlers
from price.handlers import PriceService

log = structlog.get_logger()
MESSAGES = Counter("price_messages_total", "Messages handled by the price service", ["queue", "outcome"])
HANDLER_SECONDS = Histogram("price_handler_seconds", "Time to handle one message", ["queue"])

OUTAGES = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
           asyncpg.exceptions.OperatorInterventionError)
"""The database or the network is down: not the message's fault, so retried until it passes."""
QUERY_HANDLERS = {
    names.PRICE_AT: (PriceAtRequested, handlers.answer_price_at),
    names.PRICE_RANGE: (PriceRangeRequested, handlers.answer_price_range),
    names.PRICE_LATEST: (LatestPriceRequested, handlers.answer_latest),
}


def existing_queue(spec: QueueSpec) -> RabbitQueue:
    """The queue as contracts.topology declares it (declared before the broker starts)."""
    return RabbitQueue(spec.name, durable=True, arguments=spec.arguments, declare=False)


async def dead_letter(broker: RabbitBroker, spec: QueueSpec, message: IncomingMessage, reason: str) -> None:
    MESSAGES.labels(spec.name, "dead_lettered").inc()
    await park(broker, spec.name, message, reason)


class AnswerBatcher:
    """Price requests answered together: whatever arrived while the previous batch ran is looked up in one query
    (answered before?) and stored in one statement, so a burst costs two round trips, not two a request. Each
    handler awaits its own request's stored answer, then publishes it and acks."""

    def __init__(self, service: PriceService, limit: int = 200) -> None:
        self.service, self.limit = service, limit
        self.waiting: deque[tuple[PriceRequested, asyncio.Future[tuple[str, bytes]]]] = deque()
        self.has_work = asyncio.Event()

    async def answer(self, request: PriceRequested) -> tuple[str, bytes]:
        """The request's answer as stored (routing key, body): the first answer, if it was answered before."""
        future: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        self.has_work.set()
        return await future

    async def run(self) -> None:
        while True:
            await self.has_work.wait()
            batch = [self.waiting.popleft() for _ in range(min(self.limit, len(self.waiting)))]
            if not self.waiting:
                self.has_work.clear()
            try:
                answers = await self.answer_batch([request for request, _ in batch])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # each handler's attempt policy decides (an outage waits and requeues)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for request, future in batch:
                if not future.done():
                    future.set_result(answers[request.message_id])

    async def answer_batch(self, requests: list[PriceRequested]) -> dict[str, tuple[str, bytes]]:
        """Answer from the candles in memory, then store the answers in one statement, which returns the first
        answer of a request answered before (a redelivery), so that is what goes out again."""
        store = self.service.store
        unique = {request.message_id: request for request in requests}  # a redelivery may share the batch
        single_hours = {r.at.timestamp() // 3600 * 3600 for r in unique.values() if r.at is not None}
        await store.candles(sorted(int(hour) for hour in single_hours))  # hours not in memory: one query
        # side by side; a batch waits for its slowest answer (an hour fetched from the provider, which is rare)
        answered = await asyncio.gather(*(handlers.answer_price_request(self.service, r) for r in unique.values()))
        fresh: dict[str, Message] = dict(zip(unique, answered, strict=True))
        stored, repeated = await store.record_answers(fresh)
        MESSAGES.labels(PRICE_REQUESTS.name, "duplicate").inc(repeated)
        for answer in answered:
            MESSAGES.labels(PRICE_REQUESTS.name, answer.routing_key).inc()
        return stored


def build_router(service: PriceService, broker: RabbitBroker, answers: AnswerBatcher,
                 max_attempts: int = 3) -> RabbitRouter:
    router = RabbitRouter()
    policy = AttemptPolicy(max_attempts=max_attempts, outages=OUTAGES)

    @router.subscriber(existing_queue(PRICE_REQUESTS), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_price_requested(message: IncomingMessage) -> None:
        """Answer with price.resolved/unavailable; a duplicate gets the stored first answer; ack after publish."""
        with HANDLER_SECONDS.labels(PRICE_REQUESTS.name).time():
            try:
                request = decode(PriceRequested, message.body)
            except ContractError as error:
                await dead_letter(broker, PRICE_REQUESTS, message, str(error))
                return
            bind_correlation(request.correlation_id, message_id=request.message_id)
            handled, stored = await within_attempts(broker, PRICE_REQUESTS.name, message,
                                                    lambda: answers.answer(request), policy)
            if not handled or stored is None:
                MESSAGES.labels(PRICE_REQUESTS.name, "dead_lettered").inc()
                return
            routing_key, body = stored
            await broker.publish(body, exchange=names.EVENTS_EXCHANGE, routing_key=routing_key,
                                 correlation_id=request.correlation_id, content_type="application/json",
                                 persist=True)

    @router.subscriber(existing_queue(PRICE_QUERIES), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_price_query(message: IncomingMessage) -> bytes | None:
        """price.at / price.range / price.latest → a Reply to the caller's reply queue."""
        routing_key = routing_key_of(message)
        with HANDLER_SECONDS.labels(PRICE_QUERIES.name).time():
            model, answer = QUERY_HANDLERS.get(routing_key, (None, None))
            if model is None or answer is None:
                await dead_letter(broker, PRICE_QUERIES, message, f"no price query is named {routing_key!r}")
                return None
            try:
                query = decode(model, message.body)
            except ContractError as error:
                await dead_letter(broker, PRICE_QUERIES, message, str(error))
                return None
            bind_correlation(query.correlation_id, query=routing_key)
            handled, reply = await within_attempts(broker, PRICE_QUERIES.name, message,
                                                   lambda: answer(service, query), policy)
            if not handled or reply is None:
                MESSAGES.labels(PRICE_QUERIES.name, "dead_lettered").inc()
                reply = Reply.failure(query, ErrorCode.UNAVAILABLE, "The price service could not answer this "
                                      "query; it has been set aside for an operator.")
            MESSAGES.labels(PRICE_QUERIES.name, "ok" if reply.ok else reply.error.code).inc()  # type: ignore[union-attr]
            return reply.to_json() if message.reply_to else None

    return router
