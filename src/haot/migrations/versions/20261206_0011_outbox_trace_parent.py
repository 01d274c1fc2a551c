"""outbox rows carry the trace context of the request or consumer that wrote them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from haot.migrations.scope import migrates

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("outbox"):
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            # Nullable, no default: rows written before (and outside any request or consumer)
            # have none; adding it rewrites nothing on PostgreSQL.
            batch_op.add_column(sa.Column("trace_parent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    if migrates("outbox"):
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.drop_column("trace_parent")
