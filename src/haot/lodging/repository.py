"""Named queries of the lodging context (search queries live in ``search_queries``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.lodging.models import Lodging, LodgingAmenity, Night, RoomType


class LodgingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Lodging | RoomType | Night) -> None:
        self.session.add(row)

    async def get(self, lodging_id: uuid.UUID, *, for_update: bool = False) -> Lodging | None:
        statement = select(Lodging).where(Lodging.id == lodging_id, Lodging.deleted_at.is_(None))
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def set_rating(
        self,
        lodging_id: uuid.UUID,
        *,
        review_count: int,
        rating_sum: int,
        rating_avg: float | None,
        version: int,
    ) -> bool:
        """Store the rating figures of ``version`` unless a version as new is stored: True when
        they were stored."""
        stored = await self.session.execute(
            update(Lodging)
            .where(Lodging.id == lodging_id, Lodging.rating_version < version)
            .values(
                review_count=review_count,
                rating_sum=rating_sum,
                rating_avg=rating_avg,
                rating_version=version,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(stored, "rowcount", 0))

    async def list_for_host(
        self, host_id: uuid.UUID | None, *, offset: int, limit: int
    ) -> tuple[Sequence[Lodging], int]:
        conditions: list[ColumnElement[bool]] = [Lodging.deleted_at.is_(None)]
        if host_id is not None:
            conditions.append(Lodging.host_id == host_id)
        total = (
            await self.session.execute(select(func.count()).select_from(Lodging).where(*conditions))
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(Lodging)
                .where(*conditions)
                .order_by(Lodging.created_at.desc(), Lodging.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)

    async def replace_amenities(self, lodging_id: uuid.UUID, amenities: Sequence[str]) -> None:
        await self.session.execute(
            delete(LodgingAmenity).where(LodgingAmenity.lodging_id == lodging_id)
        )
        self.session.add_all(
            LodgingAmenity(lodging_id=lodging_id, amenity=a) for a in sorted(set(amenities))
        )

    async def room_types_of(self, lodging_ids: Sequence[uuid.UUID]) -> Sequence[RoomType]:
        if not lodging_ids:
            return []
        return (
            await self.session.scalars(
                select(RoomType)
                .where(RoomType.lodging_id.in_(lodging_ids), RoomType.deleted_at.is_(None))
                .order_by(RoomType.created_at, RoomType.id)
            )
        ).all()

    async def get_room_type(
        self, room_type_id: uuid.UUID, *, for_update: bool = False
    ) -> RoomType | None:
        statement = select(RoomType).where(
            RoomType.id == room_type_id, RoomType.deleted_at.is_(None)
        )
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def nights(
        self,
        room_type_ids: Sequence[uuid.UUID],
        start: date,
        end: date | None,
        *,
        for_update: bool = False,
    ) -> Sequence[Night]:
        """The nights in [start, end) (``end`` None: every night from ``start`` on)."""
        if not room_type_ids:
            return []
        statement = (
            select(Night)
            .where(Night.room_type_id.in_(room_type_ids), Night.date >= start)
            .order_by(Night.room_type_id, Night.date)
        )
        if end is not None:
            statement = statement.where(Night.date < end)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).all()

    async def has_bookings_from(
        self,
        *,
        today: date,
        lodging_id: uuid.UUID | None = None,
        room_type_id: uuid.UUID | None = None,
    ) -> bool:
        statement = select(Night.date).where(Night.date >= today, (Night.held + Night.sold) > 0)
        if lodging_id is not None:
            statement = statement.where(Night.lodging_id == lodging_id)
        if room_type_id is not None:
            statement = statement.where(Night.room_type_id == room_type_id)
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def close_future_nights(
        self,
        *,
        today: date,
        room_type_id: uuid.UUID | None = None,
        lodging_id: uuid.UUID | None = None,
    ) -> None:
        guards = [Night.date >= today]
        if room_type_id is not None:
            guards.append(Night.room_type_id == room_type_id)
        if lodging_id is not None:
            guards.append(Night.lodging_id == lodging_id)
        # Locked in the order holds lock them (room type, then date) before the UPDATE, whose
        # plan may visit rows in any order: a concurrent hold then queues instead of deadlocking.
        await self.session.execute(
            select(Night.room_type_id)
            .where(*guards)
            .order_by(Night.room_type_id, Night.date)
            .with_for_update()
        )
        await self.session.execute(update(Night).where(*guards).values(closed=True))
