"""JSON logs for every service, carrying the correlation_id of the message or request being handled."""

import logging
import sys

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars

_service_name = "bitfolio"


def configure_logging(service: str, level: str = "INFO") -> None:
    """One JSON object per line on stdout, with service, level, timestamp and any bound context."""
    global _service_name
    _service_name = service
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper())
    structlog.configure(
        processors=[
            merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def bind_correlation(correlation_id: str | None, **fields: object) -> None:
    """Bind the correlation id (and any extra fields) to every log line of the current task."""
    clear_contextvars()
    bind_contextvars(service=_service_name, correlation_id=correlation_id, **fields)
