"""Tables owned by the point context.

A lot is one grant of points with its own expiry; ``remaining`` is what is left of it to spend.
Holds take points out of lots (earliest expiry first) and remember where from (allocations), so
releasing or refunding puts them back into the very same lots.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Lot(Base):
    __tablename__ = "point_lots"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(16))  # EARN or ADMIN_GRANT
    amount: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What created the lot (e.g. ``earn:<reservation id>``); unique, so an earn is granted once.
    source: Mapped[str | None] = mapped_column(String(120), unique=True)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("remaining <= amount", name="remaining_within_amount"),
        Index("ix_point_lots_user_expiry", "user_id", "expires_at"),
        Index("ix_point_lots_expiry_remaining", "expires_at", "remaining"),
    )


class Hold(Base):
    """Points set aside for one reservation: HELD → SPENT (confirmed) or RELEASED (given up)."""

    __tablename__ = "point_holds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    refunded: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Allocation(Base):
    """How much of a hold came from which lot (and how much of that went back)."""

    __tablename__ = "point_allocations"

    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amount: Mapped[int] = mapped_column(Integer)
    returned: Mapped[int] = mapped_column(Integer, default=0)


class Entry(Base):
    """The user-visible history: EARN, USE, CANCEL_USE, EXPIRE, ADMIN_GRANT, ADMIN_DEDUCT."""

    __tablename__ = "point_entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)  # signed: + into the balance, - out of it
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    lot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_point_entries_user_created", "user_id", "created_at"),
        Index("ix_point_entries_type_created", "type", "created_at"),
    )
