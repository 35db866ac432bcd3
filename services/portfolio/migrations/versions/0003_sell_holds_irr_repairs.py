"""Held sells, IRR kept current by the projection, and ledgers waiting for missing midnight prices.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF [NOT] EXISTS: revision 0001 creates its tables from the current models, which already have these columns
    for statement in (
        "ALTER TABLE transactions ADD COLUMN IF NOT EXISTS hold_reason text",
        "ALTER TABLE transactions ADD COLUMN IF NOT EXISTS hold_detail text",
        "ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS held_pending integer NOT NULL DEFAULT 0",
        "ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS held_failed integer NOT NULL DEFAULT 0",
        "ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS irr_due boolean NOT NULL DEFAULT false",
        "ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS repair_from timestamptz",
        "ALTER TABLE portfolios DROP COLUMN IF EXISTS irr_as_of",
        "UPDATE portfolios SET irr_due = true WHERE NOT deleted",
        "CREATE INDEX IF NOT EXISTS portfolios_irr_due ON portfolios (portfolio_id) WHERE irr_due AND NOT deleted",
        "CREATE INDEX IF NOT EXISTS portfolios_repair_due ON portfolios (repair_from) WHERE repair_from IS NOT NULL",
    ):
        op.execute(statement)


def downgrade() -> None:
    for statement in (
        "DROP INDEX IF EXISTS portfolios_repair_due",
        "DROP INDEX IF EXISTS portfolios_irr_due",
        "ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS irr_as_of timestamptz",
        "ALTER TABLE portfolios DROP COLUMN IF EXISTS repair_from",
        "ALTER TABLE portfolios DROP COLUMN IF EXISTS irr_due",
        "ALTER TABLE portfolios DROP COLUMN IF EXISTS held_pending",
        "ALTER TABLE portfolios DROP COLUMN IF EXISTS held_failed",
        "ALTER TABLE transactions DROP COLUMN IF EXISTS hold_detail",
        "ALTER TABLE transactions DROP COLUMN IF EXISTS hold_reason",
    ):
        op.execute(statement)
