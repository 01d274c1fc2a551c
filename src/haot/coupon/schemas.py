"""Shapes of the coupon API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from haot.coupon.domain import DiscountType, EventStatus, UserCouponStatus

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Won = Annotated[int, Field(ge=0, le=100_000_000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponCreate(_Input):
    name: Name
    discount_type: DiscountType
    discount_value: Annotated[int, Field(ge=1, le=100_000_000)]
    max_discount: Won | None = None
    min_order_amount: Won = 0
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    lodging_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CouponCreate:
        if self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if self.discount_type is DiscountType.PERCENT and self.discount_value > 100:
            raise ValueError("a percent discount is at most 100")
        if self.discount_type is DiscountType.FIXED and self.max_discount is not None:
            raise ValueError("max_discount applies to PERCENT coupons only")
        return self


class CouponUpdate(_Input):
    name: Name | None = None
    valid_to: AwareDatetime | None = None
    active: bool | None = None


class CouponRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    discount_type: DiscountType
    discount_value: int
    max_discount: int | None
    min_order_amount: int
    valid_from: datetime
    valid_to: datetime
    lodging_id: uuid.UUID | None
    active: bool
    created_at: datetime


class IssueRequest(_Input):
    user_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]


class IssueResult(BaseModel):
    issued: list[uuid.UUID]


class EventCreate(_Input):
    coupon_id: uuid.UUID
    name: Name | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    quantity: Annotated[int, Field(ge=1, le=10_000_000)] | None = None

    @model_validator(mode="after")
    def _window(self) -> EventCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class EventUpdate(_Input):
    name: Name | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    quantity: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    status: EventStatus | None = Field(default=None, description="CLOSED closes the event now")


class EventRead(BaseModel):
    id: uuid.UUID
    coupon_id: uuid.UUID
    name: str
    starts_at: datetime
    ends_at: datetime
    quantity: int | None
    issued: int
    remaining: int | None
    status: EventStatus
    closed_reason: str | None
    coupon: CouponRead | None = None


class ClaimAccepted(BaseModel):
    claim_id: str
    status: str = "ACCEPTED"


class ClaimRead(BaseModel):
    claim_id: str
    event_id: uuid.UUID
    status: str  # ACCEPTED, ISSUED, FAILED
    user_coupon_id: uuid.UUID | None = None
    reason: str | None = None


class UserCouponRead(BaseModel):
    id: uuid.UUID
    coupon_id: uuid.UUID
    event_id: uuid.UUID | None
    status: UserCouponStatus
    reservation_id: uuid.UUID | None
    expires_at: datetime
    issued_at: datetime
    used_at: datetime | None
    coupon: CouponRead


# Internal routes (ADR 0018): what the reservation saga asks of coupons in a split deployment.
class CouponOrder(_Input):
    """The order a user coupon would discount (a check that changes nothing)."""

    user_id: uuid.UUID
    lodging_id: uuid.UUID
    order_amount: Annotated[int, Field(ge=0)]  # a stay's subtotal (30 nights at most)


class CouponReserve(CouponOrder):
    reservation_id: uuid.UUID


class Discount(BaseModel):
    discount: int
