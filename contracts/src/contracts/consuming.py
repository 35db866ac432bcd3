"""Lean consuming for queues whose messages die with their connection (an RPC client's reply queue, a read model's
own queue): deliveries as aiormq hands them over, acknowledged in batches.

- **No aio-pika message per delivery.** aio-pika wraps every delivery in an IncomingMessage (about 60 µs of CPU on
  this machine, more than the handling itself) and a task of its own. `consume` registers the handler with aiormq on
  the robust channel's current channel, and again whenever aio-pika reopens that channel (a reconnect), after it has
  declared and bound the queue anew.
- **One ack frame for many messages.** Every ack is a frame and a socket write. Losing nothing by acknowledging late
  (the queue dies with the connection anyway), such a consumer acknowledges everything handled so far at once: when
  half its prefetch waits for an ack, or `delay` seconds after the first one that waits. The prefetch still bounds
  what the process holds (a burst waits in RabbitMQ), since the broker counts a message until its ack arrives."""

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustChannel
from aiormq.abc import DeliveredMessage

log = structlog.get_logger()

ACK_DELAY_SECONDS = 0.05
"""The longest a handled message waits for its ack; at most prefetch / delay messages a second can then pass, far
above what one process handles."""


RECONSUME_SECONDS = 2.0
"""After the broker cancels a consumer (its queue was deleted or is being recreated), it consumes again this long
after, and again after each failure, until it can or stops."""


class Consumption:
    """A queue consumed by `consume`: again after every reopening of the channel and after a cancel by the broker,
    until `stop`."""

    def __init__(self, channel: AbstractChannel, queue_name: str,
                 handler: Callable[[DeliveredMessage], Coroutine[Any, Any, None]]) -> None:
        self.channel, self.queue_name, self.handler = channel, queue_name, handler
        self.stopped = False
        self.tag: str | None = None
        self._retry: asyncio.Task[None] | None = None

    async def start(self, *_: object) -> None:
        if self.stopped:
            return
        underlay = await self.channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._cancelled_by_broker)
        self.tag = (await underlay.basic_consume(self.queue_name, self.handler)).consumer_tag

    async def _cancelled_by_broker(self, frame: Any) -> None:
        if frame.consumer_tag == self.tag and not self.stopped and (self._retry is None or self._retry.done()):
            self._retry = asyncio.ensure_future(self._consume_again())

    async def _consume_again(self) -> None:
        while not self.stopped:
            await asyncio.sleep(RECONSUME_SECONDS)
            try:
                await self.start()
                return
            except Exception as error:  # the queue is not back yet (a failed consume may also reopen the channel)
                log.warning("consume_again_failed", queue=self.queue_name, reason=repr(error))

    async def stop(self) -> None:
        """Consume no more: not after a reopening either."""
        self.stopped = True
        if isinstance(self.channel, AbstractRobustChannel):
            self.channel.reopen_callbacks.discard(self.start)
        if self._retry is not None:
            self._retry.cancel()
        if self.tag is not None and not self.channel.is_closed:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
                underlay = await self.channel.get_underlay_channel()
                await underlay.basic_cancel(self.tag)


async def consume(channel: AbstractChannel, queue_name: str,
                  handler: Callable[[DeliveredMessage], Coroutine[Any, Any, None]]) -> Consumption:
    """Deliver `queue_name`'s messages to `handler` as aiormq reads them, now, after every reopening of the channel
    and after a cancel by the broker (the handler acknowledges them, see BatchedAcks)."""
    consumption = Consumption(channel, queue_name, handler)
    await consumption.start()
    if isinstance(channel, AbstractRobustChannel):
        channel.reopen_callbacks.add(consumption.start)
    return consumption


class BatchedAcks:
    def __init__(self, prefetch: int, delay: float = ACK_DELAY_SECONDS) -> None:
        self.batch = max(1, prefetch // 2)
        self.delay = delay
        self._last: DeliveredMessage | None = None
        """The handled message with the highest delivery tag not yet acknowledged."""
        self._waiting = 0
        self._acked: dict[int, int] = {}
        """Channel (by id) → the highest delivery tag acknowledged on it, so an ack never goes backwards."""
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Future[None]] = set()

    def handled(self, message: DeliveredMessage) -> None:
        """The message needs nothing more: acknowledge it with the next batch."""
        last = self._last
        if last is None or last.channel is not message.channel or (message.delivery_tag or 0) > (last.delivery_tag or 0):
            self._last = message
        self._waiting += 1
        if self._waiting >= self.batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Acknowledge every handled message now (the frame leaves with the next write)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        message, self._last, self._waiting = self._last, None, 0
        if message is None or message.delivery_tag is None:
            return
        channel = id(message.channel)
        if self._acked.get(channel, 0) >= message.delivery_tag:
            return
        self._acked = {channel: message.delivery_tag}  # an earlier channel is gone (a reconnect opens a new one)
        sending = asyncio.ensure_future(_ack_up_to(message))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)


async def _ack_up_to(message: DeliveredMessage) -> None:
    # The channel may have closed meanwhile (a reconnect): its deliveries are gone with it, nothing to acknowledge.
    with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
        await message.channel.basic_ack(message.delivery_tag or 0, multiple=True)
