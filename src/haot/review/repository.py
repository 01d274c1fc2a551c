"""Queries of the review context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.platform.db import insert_unless_present
from haot.review.models import LodgingReviewStats, Review, Stay

_STAYS = Stay.__table__
_REVIEWS = Review.__table__
_STATS = LodgingReviewStats.__table__
ORDERS = {
    "newest": (Review.created_at.desc(), Review.id.desc()),
    "rating": (Review.rating.desc(), Review.created_at.desc(), Review.id.desc()),
    "-rating": (Review.rating.asc(), Review.created_at.desc(), Review.id.desc()),
}


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # Stays -------------------------------------------------------------------------------------

    async def add_stay(self, values: dict[str, Any]) -> bool:
        """Record a stay unless it is recorded already: True when this one was inserted."""
        statement = insert_unless_present(self._dialect(), _STAYS, ("reservation_id",))
        return (await self.session.execute(statement, values)).first() is not None

    async def stay(self, reservation_id: uuid.UUID, *, for_update: bool = False) -> Stay | None:
        statement = select(Stay).where(Stay.reservation_id == reservation_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    # Reviews -----------------------------------------------------------------------------------

    async def add_review(self, values: dict[str, Any]) -> bool:
        """Insert a review unless its reservation has one (even a deleted one): True when this one
        was inserted. Of two concurrent first reviews of one stay, exactly one is."""
        statement = insert_unless_present(self._dialect(), _REVIEWS, ("reservation_id",))
        return (await self.session.execute(statement, values)).first() is not None

    async def review(self, review_id: uuid.UUID, *, for_update: bool = False) -> Review | None:
        statement = select(Review).where(Review.id == review_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def review_of(self, reservation_id: uuid.UUID) -> Review | None:
        statement = select(Review).where(Review.reservation_id == reservation_id)
        return (await self.session.scalars(statement)).one_or_none()

    async def reviews(
        self,
        *,
        offset: int,
        limit: int,
        sort: str = "newest",
        lodging_id: uuid.UUID | None = None,
        host_id: uuid.UUID | None = None,
        visible_only: bool = False,
        hidden: bool | None = None,
        with_deleted: bool = True,
    ) -> tuple[Sequence[Review], int]:
        where: list[ColumnElement[bool]] = []
        if not with_deleted:
            where.append(Review.deleted_at.is_(None))
        if lodging_id is not None:
            where.append(Review.lodging_id == lodging_id)
        if host_id is not None:
            where.append(Review.host_id == host_id)
        if visible_only:
            where += [Review.deleted_at.is_(None), Review.hidden.is_(False)]
        elif hidden is not None:
            where.append(Review.hidden.is_(hidden))
        rows = await self.session.scalars(
            select(Review).where(*where).order_by(*ORDERS[sort]).offset(offset).limit(limit)
        )
        total = await self.session.scalar(select(func.count()).select_from(Review).where(*where))
        return rows.all(), int(total or 0)

    # Each lodging's count and sum ----------------------------------------------------------------

    async def move_stats(
        self, lodging_id: uuid.UUID, *, count: int, total: int
    ) -> tuple[int, int, int]:
        """Add to a lodging's visible count and rating sum (creating its row at zero first);
        the new count, sum and version. The UPDATE takes the row's lock: concurrent changes of
        one lodging's reviews queue here and each sees the one before."""
        await self.session.execute(
            insert_unless_present(self._dialect(), _STATS, ("lodging_id",)),
            {"lodging_id": lodging_id, "review_count": 0, "rating_sum": 0, "version": 0},
        )
        moved = await self.session.execute(
            update(LodgingReviewStats)
            .where(LodgingReviewStats.lodging_id == lodging_id)
            .values(
                review_count=LodgingReviewStats.review_count + count,
                rating_sum=LodgingReviewStats.rating_sum + total,
                version=LodgingReviewStats.version + 1,
            )
            .returning(
                LodgingReviewStats.review_count,
                LodgingReviewStats.rating_sum,
                LodgingReviewStats.version,
            )
            .execution_options(synchronize_session=False)
        )
        review_count, rating_sum, version = moved.one()
        return int(review_count), int(rating_sum), int(version)

    async def stats(self, lodging_id: uuid.UUID) -> LodgingReviewStats | None:
        return await self.session.get(LodgingReviewStats, lodging_id)
