"""FastStream pieces every service's subscribers share (needs the `bus` extra): context, attempts, dead letters."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import structlog
from faststream._internal.context.context_type import Context  # the class behind faststream.Context()
from faststream.exceptions import AckMessage, HandlerException
from faststream.rabbit import RabbitBroker
from faststream.rabbit.message import RabbitMessage

from contracts import names

log = structlog.get_logger()
T = TypeVar("T")

ATTEMPT_HEADER = "x-bitfolio-attempt"
"""Which attempt at handling this message a delivery is (1 when absent); raised on each retry copy."""
ROUTING_KEY_HEADER = "x-bitfolio-routing-key"
"""The routing key the message first arrived with; a retry copy goes through the default exchange under the
queue's name, so the original key travels here."""


class LoopContext(Context):
    """FastStream's Context, resolved on the event loop.

    The stock Context.use is synchronous, so FastStream's dependency solver hands it to a worker thread for every
    message; under load that thread hop cost about a tenth of the portfolio service's CPU."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        resolved: dict[str, Any] = super().use(**kwargs)
        return resolved


IncomingMessage = Annotated[RabbitMessage, LoopContext("message")]
"""The delivery being handled, for a subscriber's parameter: `async def on_x(message: IncomingMessage)`."""


@dataclass(frozen=True)
class AttemptPolicy:
    """How a subscriber treats a failure: outages wait and requeue; anything else is retried a bounded number
    of times and then dead-lettered with its reason."""

    max_attempts: int = 3
    outages: tuple[type[BaseException], ...] = ()
    """Failures of the infrastructure (the database is down), not of the message: requeued until they pass."""
    outage_backoff_seconds: float = 1.0


def attempt_of(message: RabbitMessage) -> int:
    try:
        return max(1, int((message.headers or {}).get(ATTEMPT_HEADER, 1)))
    except (TypeError, ValueError):
        return 1


def routing_key_of(message: RabbitMessage) -> str:
    """The key the message was first published with, also on a retry copy."""
    original = (message.headers or {}).get(ROUTING_KEY_HEADER)
    return str(original) if original else (message.raw_message.routing_key or "")


async def dead_letter(broker: RabbitBroker, queue: str, message: RabbitMessage, reason: str) -> None:
    """Park a message that can never be handled in its queue's DLQ, with the reason in a header."""
    log.warning("dead_lettered", queue=queue, reason=reason)
    await broker.publish(
        message.body,
        exchange=names.DEAD_LETTER_EXCHANGE,
        routing_key=queue,
        headers={**(message.headers or {}), ROUTING_KEY_HEADER: routing_key_of(message),
                 names.DEAD_LETTER_REASON_HEADER: reason},
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to or None,
        content_type=message.content_type or None,
        persist=True,
    )


async def retry_later(broker: RabbitBroker, queue: str, message: RabbitMessage) -> None:
    """Put a copy at the back of the queue with the attempt count raised (the broker counts nothing on a
    classic queue's requeue), keeping what the reply needs (reply_to, correlation_id)."""
    await broker.publish(
        message.body,
        exchange="",  # the default exchange: only this queue gets the copy, not every queue bound to the key
        routing_key=queue,
        headers={**(message.headers or {}), ROUTING_KEY_HEADER: routing_key_of(message),
                 ATTEMPT_HEADER: attempt_of(message) + 1},
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to or None,
        content_type=message.content_type or None,
        persist=True,
    )


async def within_attempts(broker: RabbitBroker, queue: str, message: RabbitMessage,
                          work: Callable[[], Awaitable[T]], policy: AttemptPolicy) -> tuple[bool, T | None]:
    """Run a handler under the policy: (True, result); or, once the attempts are spent, (False, None) after
    dead-lettering the message with the reason. Before that, a failed attempt queues a retry copy and acks this
    delivery without a reply (AckMessage), so the retry answers the caller."""
    try:
        return True, await work()
    except HandlerException:
        raise
    except policy.outages:
        await asyncio.sleep(policy.outage_backoff_seconds)
        raise  # nacked and requeued: the database or broker will come back, and nothing is set aside
    except Exception as error:
        attempt = attempt_of(message)
        if attempt < policy.max_attempts:
            log.warning("handler_failed_will_retry", queue=queue, attempt=attempt, error=repr(error))
            await retry_later(broker, queue, message)
            raise AckMessage() from error
        log.exception("handler_failed_gave_up", queue=queue, attempt=attempt)
        await dead_letter(broker, queue, message, f"failed {attempt} time(s); the last error: {error!r}")
        return False, None
