"""Ledger checkpoints, so a back-dated change recomputes only from its time onward.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from portfolio.db import ledger_checkpoints

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ledger_checkpoints.create(op.get_bind())


def downgrade() -> None:
    ledger_checkpoints.drop(op.get_bind())
