"""Drop transactions_newest_first: transactions_timeline read backwards serves newest-first pages, and every write
and replay paid for maintaining a second copy of the same order.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS transactions_newest_first")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS transactions_newest_first ON transactions "
               "(portfolio_id, at DESC, sequence DESC)")
