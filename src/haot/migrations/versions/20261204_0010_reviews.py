"""reviews: stays, reviews, each lodging's count and sum; the lodging keeps their version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("review_stays"):
        op.create_table(
            "review_stays",
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("host_id", sa.Uuid(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("check_in", sa.Date(), nullable=False),
            sa.Column("check_out", sa.Date(), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_review_stays")),
        )

    if migrates("review_reviews"):
        op.create_table(
            "review_reviews",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("reservation_id", sa.Uuid(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("host_id", sa.Uuid(), nullable=False),
            sa.Column("check_in", sa.Date(), nullable=False),
            sa.Column("check_out", sa.Date(), nullable=False),
            sa.Column("rating", sa.Integer(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("image_urls", sa.JSON(), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("deleted_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("hidden", sa.Boolean(), nullable=False),
            sa.Column("hidden_reason", sa.String(length=500), nullable=True),
            sa.Column("hidden_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("hidden_by", sa.Uuid(), nullable=True),
            sa.Column("reply_text", sa.Text(), nullable=True),
            sa.Column("replied_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column(
                "reply_updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True
            ),
            sa.CheckConstraint(
                "rating BETWEEN 1 AND 5", name=op.f("ck_review_reviews_rating_one_to_five")
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_review_reviews")),
            sa.UniqueConstraint("reservation_id", name=op.f("uq_review_reviews_reservation_id")),
        )
        op.create_index(
            "ix_review_reviews_lodging_created", "review_reviews", ["lodging_id", "created_at"]
        )
        op.create_index(op.f("ix_review_reviews_user_id"), "review_reviews", ["user_id"])

    if migrates("review_lodging_stats"):
        op.create_table(
            "review_lodging_stats",
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("review_count", sa.Integer(), nullable=False),
            sa.Column("rating_sum", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.CheckConstraint(
                "review_count >= 0", name=op.f("ck_review_lodging_stats_count_not_negative")
            ),
            sa.CheckConstraint(
                "rating_sum >= review_count",
                name=op.f("ck_review_lodging_stats_sum_at_least_count"),
            ),
            sa.PrimaryKeyConstraint("lodging_id", name=op.f("pk_review_lodging_stats")),
        )

    if migrates("lodging_lodgings"):
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("rating_version", sa.Integer(), server_default="0", nullable=False)
            )


def downgrade() -> None:
    if migrates("lodging_lodgings"):
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.drop_column("rating_version")

    if migrates("review_lodging_stats"):
        op.drop_table("review_lodging_stats")

    if migrates("review_reviews"):
        op.drop_index(op.f("ix_review_reviews_user_id"), table_name="review_reviews")
        op.drop_index("ix_review_reviews_lodging_created", table_name="review_reviews")
        op.drop_table("review_reviews")

    if migrates("review_stays"):
        op.drop_table("review_stays")
