"""Forwarding commands and queries to the services over request/reply, and mapping their typed errors."""

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from contracts.envelope import Message
from contracts.rpc import RequestTimeout, RpcClient
from pydantic import BaseModel

from contracts import ErrorCode, Reply
from gateway.errors import STATUS_OF_CODE, ApiError

R = TypeVar("R", bound=BaseModel)
RETRY_AFTER_SECONDS = "3"


@dataclass
class StableCommandIds:
    """Message ids for the commands of a write sent with an Idempotency-Key: the n-th command of every attempt
    gets the same id, so the portfolio service (which applies a message id at most once and keeps its reply)
    answers a retry with the first attempt's result instead of applying it again."""

    seed: str
    sent: int = 0

    def next_id(self) -> str:
        self.sent += 1
        return hashlib.sha256(f"{self.seed}:{self.sent}".encode()).hexdigest()[:32]


stable_command_ids: ContextVar[StableCommandIds | None] = ContextVar("stable_command_ids", default=None)


class ReplyWatcher(Protocol):
    """Told of every successful answer (the read model keeps what a write returns)."""

    def mark(self) -> int: ...

    def answered(self, request: Message, reply: Reply, mark: int) -> None: ...


class Backend:
    def __init__(self, client: RpcClient, watcher: ReplyWatcher | None = None) -> None:
        self.client = client
        self.watcher = watcher

    async def ask(self, request: Message) -> Any:
        """The reply's result (JSON), or ApiError with the right status; a silent service is a 503."""
        stable = stable_command_ids.get()
        if stable is not None:
            request = request.model_copy(update={"message_id": stable.next_id()})
        if not self.client.connected:
            raise ApiError(503, "unavailable", "The message broker is unreachable; try again shortly.",
                           headers={"Retry-After": RETRY_AFTER_SECONDS})
        mark = self.watcher.mark() if self.watcher else 0
        try:
            reply = await self.client.call(request)
        except RequestTimeout as error:
            raise ApiError(503, "unavailable", "The service did not answer in time; try again shortly.",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from error
        if reply.ok:
            if self.watcher:
                self.watcher.answered(request, reply, mark)
            return reply.result
        error = reply.error
        assert error is not None
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.code == ErrorCode.UNAVAILABLE else None
        raise ApiError(STATUS_OF_CODE.get(error.code, 400), error.code.value, error.message, error.details, headers)

    async def ask_as(self, request: Message, model: type[R]) -> R:
        return model.model_validate(await self.ask(request))
