"""Use cases of the review context: stays recorded from the reservation's events, reviews written,
edited, deleted, answered by the host and moderated; each lodging's rating kept exact."""

from __future__ import annotations

import uuid
from datetime import date

import structlog

from haot.platform.auth import Principal
from haot.platform.clock import seoul_today, utcnow
from haot.platform.errors import Conflict, NotFound
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams
from haot.review.domain import NOT_COUNTED, Counted, change, window_closes, within_window
from haot.review.events import LodgingRatingChanged
from haot.review.models import Review
from haot.review.repository import ReviewRepository
from haot.review.schemas import (
    Moderation,
    MyReviewRead,
    ReplyRead,
    ReviewAdminRead,
    ReviewCreate,
    ReviewRead,
    ReviewUpdate,
)

log = structlog.get_logger(__name__)
CONFIRMED, COMPLETED, CANCELLED = "CONFIRMED", "COMPLETED", "CANCELLED"
# A stay's news only moves forward: a late "confirmed" never undoes "completed".
_RANK = {CONFIRMED: 1, COMPLETED: 2, CANCELLED: 2}


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    title = "No such reservation of yours"


class ReviewNotFound(NotFound):
    code = "review_not_found"
    title = "No such review"


class LodgingNotFound(NotFound):
    code = "lodging_not_found"
    title = "No such lodging"


class StayNotCompleted(Conflict):
    code = "stay_not_completed"
    title = "Only a completed stay can be reviewed"


class ReviewWindowClosed(Conflict):
    code = "review_window_closed"
    title = "The time to review this stay, or to change its review, is over"


class AlreadyReviewed(Conflict):
    code = "already_reviewed"
    title = "This reservation has its review already"


class ReviewService:
    def __init__(self, *, uow: UnitOfWorkFactory, window_days: int) -> None:
        self._uow = uow
        self._window_days = window_days

    # The reservation's news ------------------------------------------------------------------

    async def record_stay(
        self,
        unit: UnitOfWork,
        *,
        status: str,
        reservation_id: uuid.UUID,
        user_id: uuid.UUID,
        host_id: uuid.UUID,
        lodging_id: uuid.UUID,
        check_in: date,
        check_out: date,
    ) -> None:
        repo = ReviewRepository(unit.session)
        now = utcnow()
        added = await repo.add_stay(
            {
                "reservation_id": reservation_id,
                "status": status,
                "user_id": user_id,
                "host_id": host_id,
                "lodging_id": lodging_id,
                "check_in": check_in,
                "check_out": check_out,
                "updated_at": now,
            }
        )
        if added:
            return
        stay = await repo.stay(reservation_id, for_update=True)
        if stay is not None and _RANK[status] > _RANK.get(stay.status, 0):
            stay.status = status
            stay.updated_at = now

    # The guest's review ----------------------------------------------------------------------

    async def write(
        self, principal: Principal, reservation_id: uuid.UUID, data: ReviewCreate
    ) -> MyReviewRead:
        today = seoul_today()
        async with self._uow() as uow:
            repo = ReviewRepository(uow.session)
            stay = await repo.stay(reservation_id)
            if stay is None or stay.user_id != principal.user_id:
                raise ReservationNotFound()
            if stay.status != COMPLETED:
                raise StayNotCompleted(f"the stay is {stay.status}")
            if not within_window(stay.check_out, today, self._window_days):
                closed = window_closes(stay.check_out, self._window_days)
                raise ReviewWindowClosed(f"reviews of this stay closed on {closed}")
            now = utcnow()
            review_id = new_id()
            values = {
                "id": review_id,
                "reservation_id": reservation_id,
                "lodging_id": stay.lodging_id,
                "user_id": stay.user_id,
                "host_id": stay.host_id,
                "check_in": stay.check_in,
                "check_out": stay.check_out,
                "rating": data.rating,
                "text": data.text,
                "image_urls": list(data.image_urls),
                "created_at": now,
                "updated_at": now,
                "hidden": False,
            }
            if not await repo.add_review(values):
                raise AlreadyReviewed()
            await self._count(uow, stay.lodging_id, NOT_COUNTED, Counted(True, data.rating))
            review = await repo.review(review_id)
            assert review is not None
            await uow.commit()
        return self._mine(review)

    async def review_of(self, principal: Principal, reservation_id: uuid.UUID) -> MyReviewRead:
        async with self._uow() as uow:
            review = await ReviewRepository(uow.session).review_of(reservation_id)
        if review is None or review.deleted_at or review.user_id != principal.user_id:
            raise ReviewNotFound()
        return self._mine(review)

    async def edit(
        self, principal: Principal, review_id: uuid.UUID, data: ReviewUpdate
    ) -> MyReviewRead:
        async with self._uow() as uow:
            review = await self._authored(uow, principal, review_id)
            before = _counted(review)
            fields = data.model_dump(exclude_unset=True)
            for name in ("rating", "text", "image_urls"):
                if fields.get(name) is not None:
                    setattr(review, name, fields[name])
            review.updated_at = utcnow()
            await self._count(uow, review.lodging_id, before, _counted(review))
            await uow.commit()
        return self._mine(review)

    async def delete(self, principal: Principal, review_id: uuid.UUID) -> None:
        async with self._uow() as uow:
            review = await self._authored(uow, principal, review_id)
            before = _counted(review)
            review.deleted_at = review.updated_at = utcnow()
            await self._count(uow, review.lodging_id, before, NOT_COUNTED)
            await uow.commit()

    async def _authored(
        self, uow: UnitOfWork, principal: Principal, review_id: uuid.UUID
    ) -> Review:
        """The author's own review, locked, while it may still change."""
        review = await ReviewRepository(uow.session).review(review_id, for_update=True)
        if review is None or review.deleted_at or review.user_id != principal.user_id:
            raise ReviewNotFound()
        if not within_window(review.check_out, seoul_today(), self._window_days):
            raise ReviewWindowClosed()
        return review

    # The host's reply ------------------------------------------------------------------------

    async def reply(self, principal: Principal, review_id: uuid.UUID, text: str) -> MyReviewRead:
        """The lodging's host answers (once; a second answer replaces the first)."""
        async with self._uow() as uow:
            review = await ReviewRepository(uow.session).review(review_id, for_update=True)
            if review is None or review.deleted_at or review.host_id != principal.user_id:
                raise ReviewNotFound()
            now = utcnow()
            review.reply_text = text
            review.replied_at = review.replied_at or now
            review.reply_updated_at = now
            await uow.commit()
        return self._mine(review)

    async def remove_reply(self, principal: Principal, review_id: uuid.UUID) -> None:
        async with self._uow() as uow:
            review = await ReviewRepository(uow.session).review(review_id, for_update=True)
            if review is None or review.deleted_at or review.host_id != principal.user_id:
                raise ReviewNotFound()
            review.reply_text = review.replied_at = review.reply_updated_at = None
            await uow.commit()

    # Moderation ------------------------------------------------------------------------------

    async def moderate(
        self, principal: Principal, review_id: uuid.UUID, data: Moderation
    ) -> ReviewAdminRead:
        async with self._uow() as uow:
            review = await ReviewRepository(uow.session).review(review_id, for_update=True)
            if review is None or review.deleted_at:
                raise ReviewNotFound()
            before = _counted(review)
            review.hidden = data.hidden
            # Who hid it, when and why, while it is hidden; the log keeps every decision.
            review.hidden_reason = (data.reason or None) if data.hidden else None
            review.hidden_at = utcnow() if data.hidden else None
            review.hidden_by = principal.user_id if data.hidden else None
            await self._count(uow, review.lodging_id, before, _counted(review))
            await uow.commit()
        log.info(
            "review_moderated",
            review_id=str(review_id),
            hidden=data.hidden,
            reason=data.reason,
            admin_id=str(principal.user_id),
        )
        return self._admin(review)

    # Lists -------------------------------------------------------------------------------------

    async def of_lodging(
        self, lodging_id: uuid.UUID, *, sort: str, paging: PageParams
    ) -> Page[ReviewRead]:
        async with self._uow() as uow:
            rows, total = await ReviewRepository(uow.session).reviews(
                lodging_id=lodging_id,
                visible_only=True,
                sort=sort,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[ReviewRead].of(rows, total, paging, _public)

    async def of_host(
        self, principal: Principal, *, lodging_id: uuid.UUID | None, paging: PageParams
    ) -> Page[MyReviewRead]:
        """Reviews of my lodgings (deleted ones left out; hidden ones shown as hidden)."""
        async with self._uow() as uow:
            rows, total = await ReviewRepository(uow.session).reviews(
                host_id=principal.user_id,
                lodging_id=lodging_id,
                with_deleted=False,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[MyReviewRead].of(rows, total, paging, self._mine)

    async def for_admin(
        self, *, lodging_id: uuid.UUID | None, hidden: bool | None, paging: PageParams
    ) -> Page[ReviewAdminRead]:
        async with self._uow() as uow:
            rows, total = await ReviewRepository(uow.session).reviews(
                lodging_id=lodging_id, hidden=hidden, offset=paging.offset, limit=paging.size
            )
        return Page[ReviewAdminRead].of(rows, total, paging, self._admin)

    # Each lodging's rating -------------------------------------------------------------------

    async def _count(
        self, uow: UnitOfWork, lodging_id: uuid.UUID, before: Counted, after: Counted
    ) -> None:
        """Move the lodging's count and sum with the review's change, in the same transaction,
        and tell the lodging context where they stand now (outbox)."""
        count, total = change(before, after)
        if (count, total) == (0, 0):
            return
        review_count, rating_sum, version = await ReviewRepository(uow.session).move_stats(
            lodging_id, count=count, total=total
        )
        uow.emit(
            LodgingRatingChanged(
                lodging_id=lodging_id,
                review_count=review_count,
                rating_sum=rating_sum,
                version=version,
            )
        )

    # Reading -----------------------------------------------------------------------------------

    def _mine(self, review: Review) -> MyReviewRead:
        return MyReviewRead(
            **_public(review).model_dump(),
            reservation_id=review.reservation_id,
            check_in=review.check_in,
            check_out=review.check_out,
            hidden=review.hidden,
            hidden_reason=review.hidden_reason,
            editable_until=window_closes(review.check_out, self._window_days),
        )

    def _admin(self, review: Review) -> ReviewAdminRead:
        return ReviewAdminRead(
            **self._mine(review).model_dump(),
            user_id=review.user_id,
            host_id=review.host_id,
            hidden_at=review.hidden_at,
            hidden_by=review.hidden_by,
            deleted_at=review.deleted_at,
        )


def _counted(review: Review) -> Counted:
    return Counted(visible=review.deleted_at is None and not review.hidden, rating=review.rating)


def _public(review: Review) -> ReviewRead:
    reply = None
    if review.reply_text is not None and review.replied_at and review.reply_updated_at:
        reply = ReplyRead(
            text=review.reply_text,
            created_at=review.replied_at,
            updated_at=review.reply_updated_at,
        )
    return ReviewRead(
        id=review.id,
        lodging_id=review.lodging_id,
        rating=review.rating,
        text=review.text,
        image_urls=list(review.image_urls),
        stayed_in=review.check_in.isoformat()[:7],
        created_at=review.created_at,
        updated_at=review.updated_at,
        edited=review.updated_at > review.created_at,
        reply=reply,
    )
