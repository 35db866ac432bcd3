"""Alembic environment of the price service (the shared body lives in contracts.database)."""

from contracts.database import run_alembic_environment
from price.db import metadata
from price.settings import Settings

run_alembic_environment(metadata, Settings().database_url)
