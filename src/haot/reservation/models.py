"""Tables owned by the reservation context."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Reservation(Base):
    __tablename__ = "reservation_reservations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    host_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    room_type_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    lodging_name: Mapped[str] = mapped_column(String(200))
    room_type_name: Mapped[str] = mapped_column(String(200))
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    guests: Mapped[int] = mapped_column(Integer)
    nights: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    subtotal: Mapped[int] = mapped_column(Integer)
    coupon_discount: Mapped[int] = mapped_column(Integer)
    points_used: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    user_coupon_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cancellation_policy: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    # Bumped on every transition; a confirmation must name the version it was issued for.
    version: Mapped[int] = mapped_column(Integer)
    payment_id: Mapped[str | None] = mapped_column(String(64))
    checkout_url: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refund_amount: Mapped[int | None] = mapped_column(Integer)
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_reservation_user_idempotency"),
        Index("ix_reservation_user_created", "user_id", "created_at"),
        Index("ix_reservation_host_created", "host_id", "created_at"),
        Index("ix_reservation_status_expires", "status", "expires_at"),
        Index("ix_reservation_status_checkout", "status", "check_out"),
    )


class Guest(Base):
    """The name a guest goes by, as the identity context last announced it (its events
    ``identity.user_registered`` and ``identity.user_renamed``): hosts see it beside their
    reservations without asking the identity context for every row."""

    __tablename__ = "reservation_guests"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
