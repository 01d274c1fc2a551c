"""HTTP routes of the review context."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from haot.platform.domain_docs import problems
from haot.platform.web import (
    API_PREFIX,
    AdminOnly,
    CurrentUser,
    HostOnly,
    Page,
    Paging,
    PlatformDep,
    path_id,
)
from haot.review.schemas import (
    Moderation,
    MyReviewRead,
    ReplyWrite,
    ReviewAdminRead,
    ReviewCreate,
    ReviewRead,
    ReviewUpdate,
    Sort,
)
from haot.review.service import (
    LodgingNotFound,
    ReservationNotFound,
    ReviewNotFound,
    ReviewService,
)

router = APIRouter(prefix=API_PREFIX, tags=["review"])


async def review_service(platform: PlatformDep) -> ReviewService:
    service: ReviewService = platform.services["review"]
    return service


Reviews = Annotated[ReviewService, Depends(review_service)]


@router.post(
    "/reservations/{reservation_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=MyReviewRead,
    responses=problems(401, 404, 409, 422),
)
async def write_review(
    reservation_id: str, body: ReviewCreate, user: CurrentUser, reviews: Reviews
) -> MyReviewRead:
    """Review a completed stay of mine: once, within the window after check-out (409
    ``stay_not_completed``, ``review_window_closed``, ``already_reviewed``)."""
    return await reviews.write(user, path_id(reservation_id, ReservationNotFound), body)


@router.get(
    "/reservations/{reservation_id}/review",
    response_model=MyReviewRead,
    responses=problems(401, 404),
)
async def my_review(reservation_id: str, user: CurrentUser, reviews: Reviews) -> MyReviewRead:
    return await reviews.review_of(user, path_id(reservation_id, ReviewNotFound))


@router.get(
    "/lodgings/{lodging_id}/reviews", response_model=Page[ReviewRead], responses=problems(404, 422)
)
async def lodging_reviews(
    lodging_id: str, reviews: Reviews, paging: Paging, sort: Sort = "newest"
) -> Page[ReviewRead]:
    """A lodging's reviews, for anyone: newest first, or by rating (``rating``, ``-rating``)."""
    return await reviews.of_lodging(path_id(lodging_id, LodgingNotFound), sort=sort, paging=paging)


@router.patch(
    "/reviews/{review_id}", response_model=MyReviewRead, responses=problems(401, 404, 409, 422)
)
async def edit_review(
    review_id: str, body: ReviewUpdate, user: CurrentUser, reviews: Reviews
) -> MyReviewRead:
    return await reviews.edit(user, path_id(review_id, ReviewNotFound), body)


@router.delete(
    "/reviews/{review_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 404, 409),
)
async def delete_review(review_id: str, user: CurrentUser, reviews: Reviews) -> Response:
    await reviews.delete(user, path_id(review_id, ReviewNotFound))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/reviews/{review_id}/reply",
    response_model=MyReviewRead,
    responses=problems(401, 403, 404, 422),
)
async def reply(review_id: str, body: ReplyWrite, host: HostOnly, reviews: Reviews) -> MyReviewRead:
    """The lodging's host answers the review; a second answer replaces the first."""
    return await reviews.reply(host, path_id(review_id, ReviewNotFound), body.text)


@router.delete(
    "/reviews/{review_id}/reply",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404),
)
async def remove_reply(review_id: str, host: HostOnly, reviews: Reviews) -> Response:
    await reviews.remove_reply(host, path_id(review_id, ReviewNotFound))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/host/reviews", response_model=Page[MyReviewRead], responses=problems(401, 403, 422))
async def host_reviews(
    host: HostOnly, reviews: Reviews, paging: Paging, lodging_id: uuid.UUID | None = None
) -> Page[MyReviewRead]:
    """Reviews of my lodgings, hidden ones included (marked), newest first."""
    return await reviews.of_host(host, lodging_id=lodging_id, paging=paging)


@router.get(
    "/admin/reviews", response_model=Page[ReviewAdminRead], responses=problems(401, 403, 422)
)
async def all_reviews(
    _: AdminOnly,
    reviews: Reviews,
    paging: Paging,
    lodging_id: uuid.UUID | None = None,
    hidden: bool | None = None,
) -> Page[ReviewAdminRead]:
    return await reviews.for_admin(lodging_id=lodging_id, hidden=hidden, paging=paging)


@router.patch(
    "/admin/reviews/{review_id}",
    response_model=ReviewAdminRead,
    responses=problems(401, 403, 404, 422),
)
async def moderate(
    review_id: str, body: Moderation, admin: AdminOnly, reviews: Reviews
) -> ReviewAdminRead:
    """Hide a review (with a reason) or show it again; hidden reviews leave the lodging's rating."""
    return await reviews.moderate(admin, path_id(review_id, ReviewNotFound), body)
