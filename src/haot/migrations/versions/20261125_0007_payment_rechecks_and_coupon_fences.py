"""payment rechecks and coupon fences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 19:02:10.294110
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("coupon_reservation_fences"):
        op.create_table(
            "coupon_reservation_fences",
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_coupon_reservation_fences")),
        )

    if migrates("payment_payments"):
        with op.batch_alter_table("payment_payments", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("recheck_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True)
            )
            batch_op.add_column(
                sa.Column("rechecks", sa.Integer(), server_default="0", nullable=False)
            )
            batch_op.create_index(
                "ix_payment_payments_recheck", ["status", "recheck_at"], unique=False
            )


def downgrade() -> None:
    if migrates("payment_payments"):
        with op.batch_alter_table("payment_payments", schema=None) as batch_op:
            batch_op.drop_index("ix_payment_payments_recheck")
            batch_op.drop_column("rechecks")
            batch_op.drop_column("recheck_at")

    if migrates("coupon_reservation_fences"):
        op.drop_table("coupon_reservation_fences")
