"""coupons

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:18:22.021356
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("coupon_claims"):
        op.create_table(
            "coupon_claims",
            sa.Column("id", sa.String(length=80), nullable=False),
            sa.Column("event_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("user_coupon_id", sa.Uuid(), nullable=True),
            sa.Column("reason", sa.String(length=200), nullable=True),
            sa.Column("accepted_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("settled_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_claims")),
        )
        with op.batch_alter_table("coupon_claims", schema=None) as batch_op:
            batch_op.create_index(
                "ix_coupon_claims_event_user", ["event_id", "user_id"], unique=False
            )

    if migrates("coupon_coupons"):
        op.create_table(
            "coupon_coupons",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("discount_type", sa.String(length=16), nullable=False),
            sa.Column("discount_value", sa.Integer(), nullable=False),
            sa.Column("max_discount", sa.Integer(), nullable=True),
            sa.Column("min_order_amount", sa.Integer(), nullable=False),
            sa.Column("valid_from", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("valid_to", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=True),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_coupons")),
        )
        with op.batch_alter_table("coupon_coupons", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_coupon_coupons_created_at"), ["created_at"], unique=False
            )

    if migrates("coupon_events"):
        op.create_table(
            "coupon_events",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("coupon_id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("starts_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("ends_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("quantity", sa.Integer(), nullable=True),
            sa.Column("issued", sa.Integer(), nullable=False),
            sa.Column("closed_reason", sa.String(length=16), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.CheckConstraint(
                "quantity IS NULL OR issued <= quantity",
                name=op.f("ck_coupon_events_not_over_issued"),
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_events")),
        )
        with op.batch_alter_table("coupon_events", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_coupon_events_coupon_id"), ["coupon_id"], unique=False
            )
            batch_op.create_index("ix_coupon_events_window", ["starts_at", "ends_at"], unique=False)

    if migrates("coupon_user_coupons"):
        op.create_table(
            "coupon_user_coupons",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("coupon_id", sa.Uuid(), nullable=False),
            sa.Column("event_id", sa.Uuid(), nullable=True),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("reservation_id", sa.Uuid(), nullable=True),
            sa.Column("expires_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("issued_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("used_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_user_coupons")),
            sa.UniqueConstraint("event_id", "user_id", name="uq_coupon_user_coupons_event_user"),
        )
        with op.batch_alter_table("coupon_user_coupons", schema=None) as batch_op:
            batch_op.create_index(
                "ix_coupon_user_coupons_status_expires", ["status", "expires_at"], unique=False
            )
            batch_op.create_index(
                "ix_coupon_user_coupons_user_status", ["user_id", "status"], unique=False
            )


def downgrade() -> None:
    if migrates("coupon_user_coupons"):
        with op.batch_alter_table("coupon_user_coupons", schema=None) as batch_op:
            batch_op.drop_index("ix_coupon_user_coupons_user_status")
            batch_op.drop_index("ix_coupon_user_coupons_status_expires")
        op.drop_table("coupon_user_coupons")

    if migrates("coupon_events"):
        with op.batch_alter_table("coupon_events", schema=None) as batch_op:
            batch_op.drop_index("ix_coupon_events_window")
            batch_op.drop_index(batch_op.f("ix_coupon_events_coupon_id"))
        op.drop_table("coupon_events")

    if migrates("coupon_coupons"):
        with op.batch_alter_table("coupon_coupons", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_coupon_coupons_created_at"))
        op.drop_table("coupon_coupons")

    if migrates("coupon_claims"):
        with op.batch_alter_table("coupon_claims", schema=None) as batch_op:
            batch_op.drop_index("ix_coupon_claims_event_user")
        op.drop_table("coupon_claims")
