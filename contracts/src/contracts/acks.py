"""Acknowledging deliveries in batches: one basic.ack (multiple) for many messages.

Every ack is a frame and a socket write of its own, which on this machine costs about as much CPU as handling a
small message. A consumer whose messages die with its connection anyway (an exclusive reply queue, a read model's
own queue) loses nothing by acknowledging late, so it acknowledges everything handled so far at once: when half
its prefetch is waiting for an ack, or `delay` seconds after the first one that waits. The prefetch still bounds
what the process holds (a burst waits in RabbitMQ), since the broker counts a message until its ack arrives."""

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

ACK_DELAY_SECONDS = 0.05
"""The longest a handled message waits for its ack; at most prefetch / delay messages a second can then pass, far
above what one process handles."""


class BatchedAcks:
    def __init__(self, prefetch: int, delay: float = ACK_DELAY_SECONDS) -> None:
        self.batch = max(1, prefetch // 2)
        self.delay = delay
        self._last: AbstractIncomingMessage | None = None
        """The handled message with the highest delivery tag not yet acknowledged."""
        self._waiting = 0
        self._acked: dict[int, int] = {}
        """Channel (by id) → the highest delivery tag acknowledged on it, so an ack never goes backwards."""
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Future[None]] = set()

    def handled(self, message: AbstractIncomingMessage) -> None:
        """The message needs nothing more: acknowledge it with the next batch."""
        tag = message.delivery_tag or 0
        last = self._last
        if last is None or _channel_id(last) != _channel_id(message) or tag > (last.delivery_tag or 0):
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
        channel = _channel_id(message)
        if self._acked.get(channel, 0) >= message.delivery_tag:
            return
        self._acked = {channel: message.delivery_tag}  # an earlier channel is gone (a reconnect opens a new one)
        sending = asyncio.ensure_future(_ack_up_to(message))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)


def _channel_id(message: AbstractIncomingMessage) -> int:
    with contextlib.suppress(RuntimeError):  # ChannelInvalidStateError: the channel has closed
        return id(message.channel)
    return 0


async def _ack_up_to(message: AbstractIncomingMessage) -> None:
    # The channel may have closed meanwhile (a reconnect): its deliveries are gone with it, nothing to acknowledge.
    with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
        await message.ack(multiple=True)
