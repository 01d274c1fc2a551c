"""Tables owned by the payment context."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Payment(Base):
    """One payment of one reservation. ``id`` is the PortOne ``paymentId`` (chosen by us, as
    PortOne V2 expects), so the gateway and our records share the key."""

    __tablename__ = "payment_payments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    order_name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    cancelled_amount: Mapped[int] = mapped_column(Integer, default=0)
    transaction_id: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A payment we gave up on (FAILED) is asked about again a few times with backoff: money can
    # still arrive at the gateway, and its webhook can be lost.
    recheck_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rechecks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_payment_payments_user_created", "user_id", "created_at"),
        Index("ix_payment_payments_recheck", "status", "recheck_at"),
        Index("ix_payment_payments_status_created", "status", "created_at"),
    )


class Refund(Base):
    """A refund we asked the gateway for. ``key`` names why (one per reason), so a redelivered
    cancellation event cannot refund twice."""

    __tablename__ = "payment_refunds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    gateway_cancellation_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookReceipt(Base):
    """Every verified webhook id once. ``processed_at`` is set once its processing finished: a
    replay of a processed delivery is acknowledged and changes nothing; a delivery whose
    processing failed is processed again when PortOne retries it."""

    __tablename__ = "payment_webhook_receipts"

    webhook_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    payment_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
