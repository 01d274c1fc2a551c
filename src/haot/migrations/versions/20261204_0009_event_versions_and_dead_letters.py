"""events carry a contract version; consumers park poison events as dead letters

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("outbox"):
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("version", sa.SmallInteger(), server_default="1", nullable=False)
            )

    if migrates("event_dead_letters"):
        op.create_table(
            "event_dead_letters",
            sa.Column("consumer", sa.String(length=100), nullable=False),
            sa.Column("event_id", sa.Uuid(), nullable=False),
            sa.Column("type", sa.String(length=200), nullable=False),
            sa.Column("version", sa.SmallInteger(), nullable=False),
            sa.Column("aggregate_id", sa.String(length=200), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("occurred_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("error", sa.Text(), nullable=False),
            sa.Column("parked_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_event_dead_letters")),
        )


def downgrade() -> None:
    if migrates("event_dead_letters"):
        op.drop_table("event_dead_letters")

    if migrates("outbox"):
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.drop_column("version")
