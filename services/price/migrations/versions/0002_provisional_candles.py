"""Candles of an hour still trading are stored as provisional and replaced when the hour ends.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("candles", sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()))
    # An hour stored while it was still trading is provisional; it gets replaced when it is fetched again.
    op.execute("UPDATE candles SET provisional = true WHERE hour + 3600 > extract(epoch FROM now())")


def downgrade() -> None:
    op.drop_column("candles", "provisional")
