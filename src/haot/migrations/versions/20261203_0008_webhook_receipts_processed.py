"""webhook receipts record when their processing finished

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("payment_webhook_receipts"):
        with op.batch_alter_table("payment_webhook_receipts", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "processed_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True
                )
            )
        # Receipts stored before this column were acknowledged: treat them as processed.
        op.execute("UPDATE payment_webhook_receipts SET processed_at = received_at")


def downgrade() -> None:
    if migrates("payment_webhook_receipts"):
        with op.batch_alter_table("payment_webhook_receipts", schema=None) as batch_op:
            batch_op.drop_column("processed_at")
