"""Typed domain errors; each maps to one error code of the contract."""

from typing import Any


class DomainError(Exception):
    code = "validation"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidTransaction(DomainError):
    code = "validation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, {"field": field})
        self.field = field


class InsufficientHoldings(DomainError):
    code = "insufficient_holdings"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"
