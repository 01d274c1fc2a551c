"""Request and response shapes of the review API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from haot.platform.types import WebUrl

# Strict: JSON ``true`` would otherwise be read as a one-star rating, and "5" as five.
Rating = Annotated[int, Field(ge=1, le=5, strict=True)]
ReviewText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
ReplyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Images = Annotated[list[WebUrl], Field(max_length=10)]
Sort = Literal["newest", "rating", "-rating"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewCreate(_Input):
    rating: Rating
    text: ReviewText = ""
    image_urls: Images = []


class ReviewUpdate(_Input):
    """Absent fields stay as they are; a field given must have a value (null is refused, not
    read as "no change": the review would otherwise be marked edited with nothing changed)."""

    rating: Rating | None = None
    text: ReviewText | None = None
    image_urls: Images | None = None

    @field_validator("rating", "text", "image_urls", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields given (defaults are not validated): the error names the field.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value

    @model_validator(mode="after")
    def _something_changes(self) -> ReviewUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of rating, text, image_urls")
        return self


class ReplyWrite(_Input):
    text: ReplyText


class Moderation(_Input):
    hidden: bool
    # Validated when absent too: hiding without a reason is refused on ``reason`` itself.
    reason: Reason = Field(default="", validate_default=True)

    @field_validator("reason")
    @classmethod
    def _hiding_says_why(cls, reason: str, info: ValidationInfo) -> str:
        if info.data.get("hidden") and not reason:
            raise ValueError("a reason is required to hide a review")
        return reason


class ReplyRead(BaseModel):
    text: str
    created_at: datetime
    updated_at: datetime


class ReviewRead(BaseModel):
    """A review as anyone sees it: no author, the month of the stay rather than its dates."""

    id: uuid.UUID
    lodging_id: uuid.UUID
    rating: int
    text: str
    image_urls: list[str]
    stayed_in: str = Field(description="the month of check-in, YYYY-MM")
    created_at: datetime
    updated_at: datetime
    edited: bool
    reply: ReplyRead | None


class MyReviewRead(ReviewRead):
    """A review as its author, the lodging's host or an admin sees it."""

    reservation_id: uuid.UUID
    check_in: date
    check_out: date
    hidden: bool
    hidden_reason: str | None
    editable_until: date


class ReviewAdminRead(MyReviewRead):
    user_id: uuid.UUID
    host_id: uuid.UUID
    hidden_at: datetime | None
    hidden_by: uuid.UUID | None
    deleted_at: datetime | None
