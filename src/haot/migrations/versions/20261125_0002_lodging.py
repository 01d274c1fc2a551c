"""lodging

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:59:58.298005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("lodging_amenities"):
        op.create_table(
            "lodging_amenities",
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("amenity", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("lodging_id", "amenity", name=op.f("pk_lodging_amenities")),
        )
        with op.batch_alter_table("lodging_amenities", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_lodging_amenities_amenity"), ["amenity"], unique=False
            )

    if migrates("lodging_lodgings"):
        op.create_table(
            "lodging_lodgings",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("host_id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("address", sa.String(length=200), nullable=False),
            sa.Column("city", sa.String(length=200), nullable=False),
            sa.Column("district", sa.String(length=200), nullable=False),
            sa.Column("city_key", sa.String(length=200), nullable=False),
            sa.Column("district_key", sa.String(length=200), nullable=False),
            sa.Column("latitude", sa.Float(), nullable=False),
            sa.Column("longitude", sa.Float(), nullable=False),
            sa.Column("amenities", sa.JSON(), nullable=False),
            sa.Column("image_urls", sa.JSON(), nullable=False),
            sa.Column("max_guests", sa.Integer(), nullable=False),
            sa.Column("check_in_time", sa.Time(), nullable=False),
            sa.Column("check_out_time", sa.Time(), nullable=False),
            sa.Column("max_nights", sa.Integer(), nullable=False),
            sa.Column("cancellation_policy", sa.JSON(), nullable=False),
            sa.Column("rating_sum", sa.Integer(), nullable=False),
            sa.Column("review_count", sa.Integer(), nullable=False),
            sa.Column("rating_avg", sa.Float(), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("deleted_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_lodging_lodgings")),
        )
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_lodging_lodgings_city_key"), ["city_key"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_lodging_lodgings_created_at"), ["created_at"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_lodging_lodgings_district_key"), ["district_key"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_lodging_lodgings_host_id"), ["host_id"], unique=False
            )

    if migrates("lodging_nights"):
        op.create_table(
            "lodging_nights",
            sa.Column("room_type_id", sa.Uuid(), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("price", sa.Integer(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("held", sa.Integer(), nullable=False),
            sa.Column("sold", sa.Integer(), nullable=False),
            sa.Column("closed", sa.Boolean(), nullable=False),
            sa.Column("min_stay", sa.Integer(), nullable=False),
            sa.Column("max_stay", sa.Integer(), nullable=False),
            sa.CheckConstraint("held + sold <= total", name=op.f("ck_lodging_nights_not_oversold")),
            sa.CheckConstraint("held >= 0", name=op.f("ck_lodging_nights_held_not_negative")),
            sa.CheckConstraint("price >= 0", name=op.f("ck_lodging_nights_price_not_negative")),
            sa.CheckConstraint("sold >= 0", name=op.f("ck_lodging_nights_sold_not_negative")),
            sa.PrimaryKeyConstraint("room_type_id", "date", name=op.f("pk_lodging_nights")),
        )
        with op.batch_alter_table("lodging_nights", schema=None) as batch_op:
            batch_op.create_index("ix_lodging_nights_date_open", ["date", "closed"], unique=False)
            batch_op.create_index(
                "ix_lodging_nights_lodging_date", ["lodging_id", "date"], unique=False
            )

    if migrates("lodging_room_types"):
        op.create_table(
            "lodging_room_types",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("lodging_id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("capacity", sa.Integer(), nullable=False),
            sa.Column("total_rooms", sa.Integer(), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("deleted_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_lodging_room_types")),
        )
        with op.batch_alter_table("lodging_room_types", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_lodging_room_types_lodging_id"), ["lodging_id"], unique=False
            )


def downgrade() -> None:
    if migrates("lodging_room_types"):
        with op.batch_alter_table("lodging_room_types", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_lodging_room_types_lodging_id"))
        op.drop_table("lodging_room_types")

    if migrates("lodging_nights"):
        with op.batch_alter_table("lodging_nights", schema=None) as batch_op:
            batch_op.drop_index("ix_lodging_nights_lodging_date")
            batch_op.drop_index("ix_lodging_nights_date_open")
        op.drop_table("lodging_nights")

    if migrates("lodging_lodgings"):
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_lodging_lodgings_host_id"))
            batch_op.drop_index(batch_op.f("ix_lodging_lodgings_district_key"))
            batch_op.drop_index(batch_op.f("ix_lodging_lodgings_created_at"))
            batch_op.drop_index(batch_op.f("ix_lodging_lodgings_city_key"))
        op.drop_table("lodging_lodgings")

    if migrates("lodging_amenities"):
        with op.batch_alter_table("lodging_amenities", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_lodging_amenities_amenity"))
        op.drop_table("lodging_amenities")
