"""The review context's public interface for other contexts: a lodging's visible reviews.

Nothing in another context needs reviews synchronously today (the lodging's rating arrives by
event; pages read the HTTP API). The Protocol is what a caller would depend on, and the in-process
implementation is the one the all-in-one app registers (``review.client``)."""

from __future__ import annotations

import uuid
from typing import Protocol

from haot.platform.web import Page, PageParams
from haot.review.schemas import ReviewRead, Sort
from haot.review.service import ReviewService


class ReviewClient(Protocol):
    async def of_lodging(
        self, lodging_id: uuid.UUID, *, sort: Sort = "newest", page: int = 1, size: int = 20
    ) -> Page[ReviewRead]: ...


class InProcessReviewClient:
    def __init__(self, service: ReviewService) -> None:
        self._service = service

    async def of_lodging(
        self, lodging_id: uuid.UUID, *, sort: Sort = "newest", page: int = 1, size: int = 20
    ) -> Page[ReviewRead]:
        return await self._service.of_lodging(
            lodging_id, sort=sort, paging=PageParams(page=page, size=size)
        )
