"""Tables owned by the lodging context."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    Index,
    Integer,
    String,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Lodging(Base):
    __tablename__ = "lodging_lodgings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    host_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(200))
    # Lower-cased copies so region filters use an index on both engines.
    city_key: Mapped[str] = mapped_column(String(200), index=True)
    district_key: Mapped[str] = mapped_column(String(200), index=True)
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    amenities: Mapped[list[str]] = mapped_column(JSON)
    image_urls: Mapped[list[str]] = mapped_column(JSON)
    max_guests: Mapped[int] = mapped_column(Integer)
    check_in_time: Mapped[time] = mapped_column(Time)
    check_out_time: Mapped[time] = mapped_column(Time)
    max_nights: Mapped[int] = mapped_column(Integer)
    cancellation_policy: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_avg: Mapped[float | None] = mapped_column(Float)
    # The review context's version of the figures above: only a newer one replaces them.
    rating_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LodgingAmenity(Base):
    """One row per (lodging, amenity): an all-of amenity filter is a portable GROUP BY/HAVING."""

    __tablename__ = "lodging_amenities"

    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    amenity: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class RoomType(Base):
    __tablename__ = "lodging_room_types"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    total_rooms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Night(Base):
    """Price and inventory of one room type on one date. ``held`` rooms belong to pending
    reservations, ``sold`` to confirmed ones; the CHECKs make overselling impossible even for a
    statement that forgot to guard."""

    __tablename__ = "lodging_nights"

    room_type_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    price: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    min_stay: Mapped[int] = mapped_column(Integer, default=1)
    max_stay: Mapped[int] = mapped_column(Integer, default=30)

    __table_args__ = (
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("sold >= 0", name="sold_not_negative"),
        CheckConstraint("held + sold <= total", name="not_oversold"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("ix_lodging_nights_date_open", "date", "closed"),
        Index("ix_lodging_nights_lodging_date", "lodging_id", "date"),
    )


class Hold(Base):
    """Rooms of a room type held for one reservation over [check_in, check_out).

    HELD (pending payment) → SOLD (confirmed) → RELEASED (cancelled), or HELD → RELEASED (expired
    or failed). Keyed by reservation id, so every inventory call is idempotent.
    """

    __tablename__ = "lodging_holds"

    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    room_type_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    rooms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
