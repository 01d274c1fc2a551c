"""lodging search text

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 18:41:34.509950
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from haot.migrations.scope import migrates

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("lodging_lodgings"):
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("search_text", sa.Text(), server_default="", nullable=False)
            )
        # Existing rows: the application keeps it in Python-lowered form from now on.
        op.execute(
            "UPDATE lodging_lodgings SET search_text = "
            "lower(name || ' ' || address || ' ' || description)"
        )


def downgrade() -> None:
    if migrates("lodging_lodgings"):
        with op.batch_alter_table("lodging_lodgings", schema=None) as batch_op:
            batch_op.drop_column("search_text")
