"""The envelope every message carries, and the one decoder that refuses what it cannot read."""

from typing import Any, ClassVar, Self, TypeVar
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.types import UtcDatetime, utc_now


class ContractError(ValueError):
    """A message that does not match its contract; the text says what is wrong."""


def new_id() -> str:
    return uuid4().hex


class Message(BaseModel):
    """Base of every event, command and reply on the bus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routing_key: ClassVar[str] = ""
    supported_versions: ClassVar[frozenset[int]] = frozenset({1})
    notification: ClassVar[bool] = False
    """A notification is published after commit, transient and without waiting for a confirm: one that is lost
    leaves a live page stale until its next read. Every other message is persistent and confirmed."""

    message_id: str = Field(default_factory=new_id, min_length=1, max_length=100)
    correlation_id: str = Field(default_factory=new_id, min_length=1, max_length=100)
    causation_id: str | None = None
    occurred_at: UtcDatetime = Field(default_factory=utc_now)
    schema_version: int = 1

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version not in cls.supported_versions:
            supported = ", ".join(str(v) for v in sorted(cls.supported_versions))
            raise ValueError(
                f"schema_version {version} of {cls.__name__} is not supported by this reader (supports {supported})"
            )
        return version

    @property
    def publish_key(self) -> str:
        """The routing key it is published under (a message routed by owner adds the owner)."""
        return self.routing_key

    def caused(self) -> dict[str, str]:
        """Envelope fields for a message this one causes: same correlation, this one as cause."""
        return {"correlation_id": self.correlation_id, "causation_id": self.message_id}

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Self:
        return decode(cls, raw)


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode(model: type[M], raw: bytes | str | dict[str, Any]) -> M:
    """Parse a message body into its model, or raise ContractError with a readable reason."""
    try:
        if isinstance(raw, dict):
            return model.model_validate(raw)
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise ContractError(f"{model.__name__} refused: {describe_validation_error(error)}") from error
