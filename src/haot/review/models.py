"""Tables owned by the review context.

A stay becomes reviewable when the reservation context says it completed (its events, recorded in
``review_stays``). A review is kept after its author deletes it (``deleted_at``): once per
reservation stays once. ``review_lodging_stats`` is each lodging's visible reviews (neither deleted
nor hidden) as a count and a sum, with a version that moves with every change: the lodging context
keeps the newest version it was told of, so redelivered or reordered events change nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.db import Base, UtcDateTime


class Stay(Base):
    """A reservation as far as reviews care: confirmed, then completed (reviewable) or cancelled."""

    __tablename__ = "review_stays"

    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    host_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Review(Base):
    __tablename__ = "review_reviews"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reservation_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    host_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    image_urls: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    hidden_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    hidden_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    reply_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reply_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_one_to_five"),
        # The lodging's page: its visible reviews, newest first.
        Index("ix_review_reviews_lodging_created", "lodging_id", "created_at"),
    )


class LodgingReviewStats(Base):
    __tablename__ = "review_lodging_stats"

    lodging_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    review_count: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("review_count >= 0", name="count_not_negative"),
        CheckConstraint("rating_sum >= review_count", name="sum_at_least_count"),
    )
