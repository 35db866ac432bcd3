"""Concurrent request/reply over RabbitMQ: one reply queue per client and a correlation-id → future map.

FastStream's `broker.request` serializes concurrent calls (FastStream #1318); this client keeps any number
of calls in flight on one channel. A request lives only as long as its caller waits: the broker expires it
(per-message TTL, dead-lettered with reason `expired`) and the consumer checks its deadline header, so a
command whose caller already answered 503 is never applied later.
"""

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.abc import DeliveredMessage

from contracts import names
from contracts.consuming import BatchedAcks, consume
from contracts.envelope import Message, decode
from contracts.errors import Reply

DEADLINE_HEADER = "x-bitfolio-deadline-ms"
"""Unix time in milliseconds (an integer: AMQP may carry a float header as 32 bits, a minute off) after which
nobody waits for the request's reply any more."""


class RequestTimeout(TimeoutError):
    """The service did not answer in time."""


def deadline_passed(headers: Mapping[str, Any] | None, now: float | None = None) -> bool:
    """True when the request's caller has stopped waiting: it must not be applied (a request without a
    deadline, from an older client or a tool, never expires)."""
    deadline = (headers or {}).get(DEADLINE_HEADER)
    if deadline is None:
        return False
    try:
        return (time.time() if now is None else now) * 1000 > int(deadline)
    except (TypeError, ValueError):
        return False


class RpcClient:
    def __init__(self, url: str, *, timeout: float = 10.0, exchange: str = names.COMMANDS_EXCHANGE,
                 prefetch: int = 100) -> None:
        self._url = url
        self._prefetch = prefetch
        self._timeout = timeout
        self._exchange_name = exchange
        self._reply_queue_name = f"rpc.reply.{uuid4().hex}"
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._connection: AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._channel: AbstractChannel | None = None
        self._acks = BatchedAcks(prefetch)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        self._channel = channel = await self._connection.channel(publisher_confirms=True)
        # Replies are acked (in batches), so that at most `prefetch` of a burst sit in this process; the rest wait
        # in RabbitMQ.
        await channel.set_qos(prefetch_count=self._prefetch)
        self._exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self._reply_queue_name, exclusive=True, auto_delete=True)
        await consume(channel, queue.name, self._on_reply_acked)

    async def queue_depth(self, name: str) -> int | None:
        """Messages waiting in a queue (a passive declare); None when it cannot be read now."""
        if self._connection is None or self._connection.is_closed:
            return None
        try:
            async with self._connection.channel() as channel:
                queue = await channel.declare_queue(name, passive=True)
                return int(queue.declaration_result.message_count or 0)
        except aio_pika.exceptions.AMQPError:
            return None

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _on_reply_acked(self, message: DeliveredMessage) -> None:
        try:
            await self._on_reply(message)
        finally:
            self._acks.handled(message)

    async def _on_reply(self, message: DeliveredMessage) -> None:
        future = self._pending.pop(message.header.properties.correlation_id or "", None)
        if future is None or future.done():
            return
        try:
            future.set_result(decode(Reply, message.body))
        except Exception as error:  # a malformed reply fails its caller, never the consumer
            future.set_exception(error)

    async def call(self, request: Message, *, timeout: float | None = None) -> Reply:
        """Publish `request` under its routing key and wait for its Reply, or raise RequestTimeout."""
        if self._exchange is None or self._channel is None:
            raise RuntimeError("RpcClient.connect() was not awaited")
        correlation = uuid4().hex
        wait = timeout or self._timeout
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        try:
            # Straight to aiormq, as aio-pika's Exchange.publish does, without building aio-pika's Message first
            channel = await self._channel.get_underlay_channel()
            await channel.basic_publish(
                request.to_json(), exchange=self._exchange_name, routing_key=request.routing_key, mandatory=True,
                properties=aiormq.spec.Basic.Properties(
                    content_type="application/json",
                    correlation_id=correlation,
                    message_id=request.message_id,
                    reply_to=self._reply_queue_name,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    # The broker drops (dead-letters) it once we stop waiting; the deadline covers a copy that a
                    # consumer fetched in time but reaches only later.
                    expiration=str(int(wait * 1000)),
                    headers={"x-correlation-id": request.correlation_id, DEADLINE_HEADER: int((time.time() + wait) * 1000)},
                ),
            )
            return await asyncio.wait_for(future, wait)
        except TimeoutError as error:
            raise RequestTimeout(f"{request.routing_key} was not answered within {wait} s") from error
        finally:
            self._pending.pop(correlation, None)
