"""the reservation context keeps its guests' names (from identity's events) for hosts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from haot.migrations.scope import migrates
from haot.platform.db import UtcDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("reservation_guests"):
        op.create_table(
            "reservation_guests",
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("user_id"),
        )


def downgrade() -> None:
    if migrates("reservation_guests"):
        op.drop_table("reservation_guests")
