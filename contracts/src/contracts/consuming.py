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
from aio_pika.abc import AbstractChannel, AbstractRobustChannel
from aiormq.abc import DeliveredMessage

ACK_DELAY_SECONDS = 0.05
"""The longest a handled message waits for its ack; at most prefetch / delay messages a second can then pass, far
above what one process handles."""


async def consume(channel: AbstractChannel, queue_name: str,
                  handler: Callable[[DeliveredMessage], Coroutine[Any, Any, None]]) -> None:
    """Deliver `queue_name`'s messages to `handler` as aiormq reads them, now and after every reopening of the
    channel (the handler acknowledges them, see BatchedAcks)."""

    async def start(*_: object) -> None:
        underlay = await channel.get_underlay_channel()
        await underlay.basic_consume(queue_name, handler)

    await start()
    if isinstance(channel, AbstractRobustChannel):
        channel.reopen_callbacks.add(start)


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
