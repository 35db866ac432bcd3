"""Typed error codes and the reply envelope of every request/reply exchange."""

from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.envelope import Message, decode


class ErrorCode(StrEnum):
    VALIDATION = "validation"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INSUFFICIENT_HOLDINGS = "insufficient_holdings"
    UNAVAILABLE = "unavailable"


class ErrorBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


R = TypeVar("R", bound=BaseModel)


class Reply(Message):
    """The answer to a command or query: a result, or a typed error."""

    ok: bool
    result: Any = None
    error: ErrorBody | None = None
    portfolio_version: int | None = None
    """The version a write left its portfolio at, so that a reader can wait for at least that version."""

    @classmethod
    def success(cls, request: Message, result: BaseModel | list[Any] | dict[str, Any] | None,
                portfolio_version: int | None = None) -> "Reply":
        payload = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        return cls(ok=True, result=payload, portfolio_version=portfolio_version,
                   correlation_id=request.correlation_id, causation_id=request.message_id)

    @classmethod
    def failure(
        cls, request: Message | None, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> "Reply":
        error = ErrorBody(code=code, message=message, details=details)
        if request is None:
            return cls(ok=False, error=error)
        return cls(ok=False, error=error, correlation_id=request.correlation_id, causation_id=request.message_id)

    def result_as(self, model: type[R]) -> R:
        return decode(model, self.result)
