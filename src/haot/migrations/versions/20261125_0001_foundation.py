"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:53:28.991520
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haot.platform.db
from haot.migrations.scope import migrates

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if migrates("idempotency_keys"):
        op.create_table(
            "idempotency_keys",
            sa.Column("scope", sa.String(length=80), nullable=False),
            sa.Column("key", sa.String(length=255), nullable=False),
            sa.Column("fingerprint", sa.String(length=64), nullable=False),
            sa.Column("locked_until", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("response_status", sa.Integer(), nullable=True),
            sa.Column("response_headers", sa.JSON(), nullable=True),
            sa.Column("response_body", sa.LargeBinary(), nullable=True),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("expires_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        )
        with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
            )

    if migrates("identity_refresh_tokens"):
        op.create_table(
            "identity_refresh_tokens",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("family_id", sa.Uuid(), nullable=False),
            sa.Column("token_digest", sa.String(length=64), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("expires_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("used_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.Column("revoked_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_refresh_tokens")),
            sa.UniqueConstraint(
                "token_digest", name=op.f("uq_identity_refresh_tokens_token_digest")
            ),
        )
        with op.batch_alter_table("identity_refresh_tokens", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_identity_refresh_tokens_family_id"), ["family_id"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_identity_refresh_tokens_user_id"), ["user_id"], unique=False
            )

    if migrates("identity_users"):
        op.create_table(
            "identity_users",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("email", sa.String(length=254), nullable=False),
            sa.Column("password_hash", sa.String(length=255), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("phone", sa.String(length=32), nullable=True),
            sa.Column("birth_date", sa.Date(), nullable=True),
            sa.Column("gender", sa.String(length=16), nullable=True),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_users")),
            sa.UniqueConstraint("email", name=op.f("uq_identity_users_email")),
        )
        with op.batch_alter_table("identity_users", schema=None) as batch_op:
            batch_op.create_index(
                "ix_identity_users_role_created", ["role", "created_at"], unique=False
            )

    if migrates("inbox"):
        op.create_table(
            "inbox",
            sa.Column("consumer", sa.String(length=100), nullable=False),
            sa.Column("event_id", sa.Uuid(), nullable=False),
            sa.Column("processed_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        )

    if migrates("outbox"):
        op.create_table(
            "outbox",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column("event_id", sa.Uuid(), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("key", sa.String(length=200), nullable=False),
            sa.Column("type", sa.String(length=200), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("occurred_at", haot.platform.db.UtcDateTime(timezone=True), nullable=False),
            sa.Column("published_at", haot.platform.db.UtcDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
            sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        )
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.create_index(
                "ix_outbox_unpublished",
                ["id"],
                unique=False,
                postgresql_where=sa.text("published_at IS NULL"),
                sqlite_where=sa.text("published_at IS NULL"),
            )


def downgrade() -> None:
    if migrates("outbox"):
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.drop_index(
                "ix_outbox_unpublished",
                postgresql_where=sa.text("published_at IS NULL"),
                sqlite_where=sa.text("published_at IS NULL"),
            )
        op.drop_table("outbox")

    if migrates("inbox"):
        op.drop_table("inbox")

    if migrates("identity_users"):
        with op.batch_alter_table("identity_users", schema=None) as batch_op:
            batch_op.drop_index("ix_identity_users_role_created")
        op.drop_table("identity_users")

    if migrates("identity_refresh_tokens"):
        with op.batch_alter_table("identity_refresh_tokens", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_identity_refresh_tokens_user_id"))
            batch_op.drop_index(batch_op.f("ix_identity_refresh_tokens_family_id"))
        op.drop_table("identity_refresh_tokens")

    if migrates("idempotency_keys"):
        with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
            batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))
        op.drop_table("idempotency_keys")
