"""Tables owned by the coupon context. Redis admits event claims; these tables are the truth."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Coupon(Base):
    """A coupon template: what discount, on what, when."""

    __tablename__ = "coupon_coupons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    discount_type: Mapped[str] = mapped_column(String(16))  # FIXED or PERCENT
    discount_value: Mapped[int] = mapped_column(Integer)
    max_discount: Mapped[int | None] = mapped_column(Integer)
    min_order_amount: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime] = mapped_column(UtcDateTime)
    lodging_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CouponEvent(Base):
    """A drop: ``quantity`` coupons (None: unlimited, one per user) between two instants.
    ``issued`` counts rows actually issued; the conditional increment caps it at ``quantity``."""

    __tablename__ = "coupon_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    coupon_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    quantity: Mapped[int | None] = mapped_column(Integer)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    closed_reason: Mapped[str | None] = mapped_column(String(16))  # TIME, EXHAUSTED, MANUAL
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("quantity IS NULL OR issued <= quantity", name="not_over_issued"),
        Index("ix_coupon_events_window", "starts_at", "ends_at"),
    )


class UserCoupon(Base):
    """One coupon a user holds: ISSUED → RESERVED (pending reservation) → USED; RESERVED →
    ISSUED (released); ISSUED → EXPIRED. At most one per (event, user)."""

    __tablename__ = "coupon_user_coupons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    coupon_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "user_id", name="uq_coupon_user_coupons_event_user"),
        Index("ix_coupon_user_coupons_user_status", "user_id", "status"),
        Index("ix_coupon_user_coupons_status_expires", "status", "expires_at"),
    )


class Claim(Base):
    """The persisted outcome of an accepted event claim (ISSUED or FAILED)."""

    __tablename__ = "coupon_claims"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    user_coupon_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str | None] = mapped_column(String(200))
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_coupon_claims_event_user", "event_id", "user_id"),)


class ReservationFence(Base):
    """A reservation given up before its coupon was reserved: a late ``reserve`` is refused."""

    __tablename__ = "coupon_reservation_fences"

    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
