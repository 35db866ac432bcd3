"""FastStream pieces every service's subscribers share (needs the `bus` extra)."""

from typing import Annotated, Any

from faststream._internal.context.context_type import Context  # the class behind faststream.Context()
from faststream.rabbit.message import RabbitMessage


class LoopContext(Context):
    """FastStream's Context, resolved on the event loop.

    The stock Context.use is synchronous, so FastStream's dependency solver hands it to a worker thread for every
    message; under load that thread hop cost about a tenth of the portfolio service's CPU."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        resolved: dict[str, Any] = super().use(**kwargs)
        return resolved


IncomingMessage = Annotated[RabbitMessage, LoopContext("message")]
"""The delivery being handled, for a subscriber's parameter: `async def on_x(message: IncomingMessage)`."""
