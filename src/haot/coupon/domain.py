"""Pure coupon rules: discounts, applicability, event status, claim ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DiscountType(StrEnum):
    FIXED = "FIXED"
    PERCENT = "PERCENT"


class UserCouponStatus(StrEnum):
    ISSUED = "ISSUED"
    RESERVED = "RESERVED"
    USED = "USED"
    EXPIRED = "EXPIRED"


class EventStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Terms:
    discount_type: DiscountType
    discount_value: int
    max_discount: int | None
    min_order_amount: int
    valid_from: datetime
    valid_to: datetime
    lodging_id: uuid.UUID | None


def discount(terms: Terms, order_amount: int) -> int:
    """Whole won off ``order_amount``; never more than the order, a percent never above its cap."""
    if terms.discount_type is DiscountType.FIXED:
        off = terms.discount_value
    else:
        off = order_amount * terms.discount_value // 100
        if terms.max_discount is not None:
            off = min(off, terms.max_discount)
    return max(0, min(off, order_amount))


def inapplicable_because(
    terms: Terms, *, order_amount: int, lodging_id: uuid.UUID, now: datetime
) -> str | None:
    if now < terms.valid_from:
        return "the coupon is not valid yet"
    if now >= terms.valid_to:
        return "the coupon has expired"
    if order_amount < terms.min_order_amount:
        return f"the order must be at least {terms.min_order_amount} KRW"
    if terms.lodging_id is not None and terms.lodging_id != lodging_id:
        return "the coupon is for another lodging"
    return None


def event_status(
    *, starts_at: datetime, ends_at: datetime, closed_reason: str | None, now: datetime
) -> EventStatus:
    if closed_reason is not None or now >= ends_at:
        return EventStatus.CLOSED
    return EventStatus.OPEN if now >= starts_at else EventStatus.SCHEDULED


def claim_id(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """A user has at most one claim per event, so the pair is the claim's identity; encoding it
    lets the status endpoint find an in-flight claim without another lookup table."""
    return f"clm_{event_id.hex}{user_id.hex}"


def parse_claim_id(raw: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not raw.startswith("clm_") or len(raw) != 68:
        return None
    try:
        return uuid.UUID(hex=raw[4:36]), uuid.UUID(hex=raw[36:])
    except ValueError:
        return None
