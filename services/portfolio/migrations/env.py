"""Alembic environment of the portfolio service (the shared body lives in contracts.database)."""

from contracts.database import run_alembic_environment
from portfolio.db import metadata
from portfolio.settings import Settings

run_alembic_environment(metadata, Settings().database_url)
