"""Alembic environment of the gateway service (the shared body lives in contracts.database)."""

from alembic import context
from contracts.database import run_alembic_environment
from gateway.db import metadata
from gateway.settings import Settings

# Settings only when no URL is given: they refuse unsafe secrets, which a migration does not need.
url = context.get_x_argument(as_dictionary=True).get("database_url") or Settings().database_url
run_alembic_environment(metadata, url)
