"""An index of the refresh tokens revoked, so that each gateway copy reads the recently ended sessions cheaply.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("refresh_tokens_revoked_at", "refresh_tokens", ["revoked_at"],
                    postgresql_where=sa.text("revoked_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("refresh_tokens_revoked_at", table_name="refresh_tokens")
