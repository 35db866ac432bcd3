"""Transfers between portfolios: each side is a transaction of its own portfolio, linked to the other.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("kind", "text NOT NULL DEFAULT 'trade'"),
    ("fee_btc", "numeric"),
    ("transfer_id", "text"),
    ("counterpart_portfolio_id", "text"),
    ("counterpart_transaction_id", "text"),
    ("transfer_lots", "jsonb"),
    ("moved_cost_usd", "numeric"),
    ("moved_value_usd", "numeric"),
)


def upgrade() -> None:
    # IF NOT EXISTS: revision 0001 creates its tables from the current models, which already have these columns
    for name, kind in COLUMNS:
        op.execute(f"ALTER TABLE transactions ADD COLUMN IF NOT EXISTS {name} {kind}")
    op.execute("CREATE INDEX IF NOT EXISTS transactions_transfer ON transactions (portfolio_id, transfer_id) "
               "WHERE transfer_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS transactions_transfer")
    for name, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE transactions DROP COLUMN IF EXISTS {name}")
