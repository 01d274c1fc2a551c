"""points

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:14:11.733142
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("point_allocations"):
        op.create_table(
            "point_allocations",
            sa.Column("hold_id", sa.Uuid(), nullable=False),
            sa.Column("lot_id", sa.Uuid(), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("returned", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("hold_id", "lot_id", name=op.f("pk_point_allocations")),
        )

    if migrates("point_entries"):
        op.create_table(
            "point_entries",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("type", sa.String(length=16), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("reservation_id", sa.Uuid(), nullable=True),
            sa.Column("lot_id", sa.Uuid(), nullable=True),
            sa.Column("reason", sa.String(length=300), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_point_entries")),
        )
        with op.batch_alter_table("point_entries", schema=None) as batch_op:
            batch_op.create_index(
                "ix_point_entries_type_created", ["type", "created_at"], unique=False
            )
            batch_op.create_index(
                "ix_point_entries_user_created", ["user_id", "created_at"], unique=False
            )

    if migrates("point_holds"):
        op.create_table(
            "point_holds",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("refunded", sa.Integer(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_point_holds")),
            sa.UniqueConstraint("reservation_id", name=op.f("uq_point_holds_reservation_id")),
        )
        with op.batch_alter_table("point_holds", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_point_holds_user_id"), ["user_id"], unique=False)

    if migrates("point_lots"):
        op.create_table(
            "point_lots",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("remaining", sa.Integer(), nullable=False),
            sa.Column("expires_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("source", sa.String(length=120), nullable=True),
            sa.Column("reason", sa.String(length=300), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.CheckConstraint(
                "remaining <= amount", name=op.f("ck_point_lots_remaining_within_amount")
            ),
            sa.CheckConstraint("remaining >= 0", name=op.f("ck_point_lots_remaining_not_negative")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
            sa.UniqueConstraint("source", name=op.f("uq_point_lots_source")),
        )
        with op.batch_alter_table("point_lots", schema=None) as batch_op:
            batch_op.create_index(
                "ix_point_lots_expiry_remaining", ["expires_at", "remaining"], unique=False
            )
            batch_op.create_index(
                "ix_point_lots_user_expiry", ["user_id", "expires_at"], unique=False
            )


def downgrade() -> None:
    if migrates("point_lots"):
        with op.batch_alter_table("point_lots", schema=None) as batch_op:
            batch_op.drop_index("ix_point_lots_user_expiry")
            batch_op.drop_index("ix_point_lots_expiry_remaining")
        op.drop_table("point_lots")

    if migrates("point_holds"):
        with op.batch_alter_table("point_holds", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_point_holds_user_id"))
        op.drop_table("point_holds")

    if migrates("point_entries"):
        with op.batch_alter_table("point_entries", schema=None) as batch_op:
            batch_op.drop_index("ix_point_entries_user_created")
            batch_op.drop_index("ix_point_entries_type_created")
        op.drop_table("point_entries")

    if migrates("point_allocations"):
        op.drop_table("point_allocations")
