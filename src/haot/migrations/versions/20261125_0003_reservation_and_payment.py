"""reservation and payment

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:07:50.307567
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("lodging_holds"):
        op.create_table(
            "lodging_holds",
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("room_type_id", sa.Uuid(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("check_in", sa.Date(), nullable=False),
            sa.Column("check_out", sa.Date(), nullable=False),
            sa.Column("rooms", sa.Integer(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_lodging_holds")),
        )
        with op.batch_alter_table("lodging_holds", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_lodging_holds_room_type_id"), ["room_type_id"], unique=False
            )

    if migrates("payment_payments"):
        op.create_table(
            "payment_payments",
            sa.Column("id", sa.String(length=64), nullable=False),
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("order_name", sa.String(length=200), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("currency", sa.String(length=3), nullable=False),
            sa.Column("status", sa.String(length=24), nullable=False),
            sa.Column("cancelled_amount", sa.Integer(), nullable=False),
            sa.Column("transaction_id", sa.String(length=100), nullable=True),
            sa.Column("failure_reason", sa.String(length=300), nullable=True),
            sa.Column("paid_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_payments")),
            sa.UniqueConstraint("reservation_id", name=op.f("uq_payment_payments_reservation_id")),
        )
        with op.batch_alter_table("payment_payments", schema=None) as batch_op:
            batch_op.create_index(
                "ix_payment_payments_status_created", ["status", "created_at"], unique=False
            )
            batch_op.create_index(
                "ix_payment_payments_user_created", ["user_id", "created_at"], unique=False
            )

    if migrates("payment_refunds"):
        op.create_table(
            "payment_refunds",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("payment_id", sa.String(length=64), nullable=False),
            sa.Column("key", sa.String(length=120), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("reason", sa.String(length=300), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("gateway_cancellation_id", sa.String(length=100), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
            sa.UniqueConstraint("key", name=op.f("uq_payment_refunds_key")),
        )
        with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_payment_refunds_payment_id"), ["payment_id"], unique=False
            )

    if migrates("payment_webhook_receipts"):
        op.create_table(
            "payment_webhook_receipts",
            sa.Column("webhook_id", sa.String(length=120), nullable=False),
            sa.Column("type", sa.String(length=60), nullable=False),
            sa.Column("payment_id", sa.String(length=64), nullable=True),
            sa.Column("received_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_payment_webhook_receipts")),
        )

    if migrates("reservation_reservations"):
        op.create_table(
            "reservation_reservations",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("host_id", sa.Uuid(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("room_type_id", sa.Uuid(), nullable=False),
            sa.Column("lodging_name", sa.String(length=200), nullable=False),
            sa.Column("room_type_name", sa.String(length=200), nullable=False),
            sa.Column("check_in", sa.Date(), nullable=False),
            sa.Column("check_out", sa.Date(), nullable=False),
            sa.Column("guests", sa.Integer(), nullable=False),
            sa.Column("nights", sa.JSON(), nullable=False),
            sa.Column("subtotal", sa.Integer(), nullable=False),
            sa.Column("coupon_discount", sa.Integer(), nullable=False),
            sa.Column("points_used", sa.Integer(), nullable=False),
            sa.Column("amount", sa.Integer(), nullable=False),
            sa.Column("user_coupon_id", sa.Uuid(), nullable=True),
            sa.Column("cancellation_policy", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("payment_id", sa.String(length=64), nullable=True),
            sa.Column("checkout_url", sa.String(length=500), nullable=True),
            sa.Column("expires_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("refund_amount", sa.Integer(), nullable=True),
            sa.Column("failure_reason", sa.String(length=300), nullable=True),
            sa.Column("cancelled_by", sa.String(length=16), nullable=True),
            sa.Column("idempotency_key", sa.String(length=255), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("confirmed_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("cancelled_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("completed_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_reservations")),
            sa.UniqueConstraint(
                "user_id", "idempotency_key", name="uq_reservation_user_idempotency"
            ),
        )
        with op.batch_alter_table("reservation_reservations", schema=None) as batch_op:
            batch_op.create_index(
                "ix_reservation_host_created", ["host_id", "created_at"], unique=False
            )
            batch_op.create_index(
                "ix_reservation_status_checkout", ["status", "check_out"], unique=False
            )
            batch_op.create_index(
                "ix_reservation_status_expires", ["status", "expires_at"], unique=False
            )
            batch_op.create_index(
                "ix_reservation_user_created", ["user_id", "created_at"], unique=False
            )


def downgrade() -> None:
    if migrates("reservation_reservations"):
        with op.batch_alter_table("reservation_reservations", schema=None) as batch_op:
            batch_op.drop_index("ix_reservation_user_created")
            batch_op.drop_index("ix_reservation_status_expires")
            batch_op.drop_index("ix_reservation_status_checkout")
            batch_op.drop_index("ix_reservation_host_created")
        op.drop_table("reservation_reservations")

    if migrates("payment_webhook_receipts"):
        op.drop_table("payment_webhook_receipts")

    if migrates("payment_refunds"):
        with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_payment_refunds_payment_id"))
        op.drop_table("payment_refunds")

    if migrates("payment_payments"):
        with op.batch_alter_table("payment_payments", schema=None) as batch_op:
            batch_op.drop_index("ix_payment_payments_user_created")
            batch_op.drop_index("ix_payment_payments_status_created")
        op.drop_table("payment_payments")

    if migrates("lodging_holds"):
        with op.batch_alter_table("lodging_holds", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_lodging_holds_room_type_id"))
        op.drop_table("lodging_holds")
