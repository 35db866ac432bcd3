"""Bitfolio's public message contract: schemas, names and bus topology shared by every service."""

from contracts.envelope import ContractError, Message, decode
from contracts.errors import ErrorBody, ErrorCode, Reply

__all__ = ["ContractError", "ErrorBody", "ErrorCode", "Message", "Reply", "decode"]
