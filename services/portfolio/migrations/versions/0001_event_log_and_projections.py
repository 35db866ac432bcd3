"""Event log, inbox, outbox and projections of the portfolio service.

Revision ID: 0001
Revises:
"""

from alembic import op

from portfolio.db import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
LATER = {"ledger_checkpoints"}
"""Tables that later revisions add."""


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[t for t in metadata.sorted_tables if t.name not in LATER])
    op.execute("INSERT INTO event_position (id, last_position) VALUES (true, 0)")


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[t for t in metadata.sorted_tables if t.name not in LATER])
