"""Alembic environment of the gateway service (the shared body lives in contracts.database)."""

from contracts.database import run_alembic_environment
from gateway.db import metadata
from gateway.settings import Settings

run_alembic_environment(metadata, Settings().database_url)
