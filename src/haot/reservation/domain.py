"""Pure reservation rules: states, refunds by policy, payable amounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class ReservationStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


ALLOWED: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    ReservationStatus.PENDING: frozenset(
        {
            ReservationStatus.CONFIRMED,
            ReservationStatus.EXPIRED,
            ReservationStatus.CANCELLED,
            ReservationStatus.FAILED,
        }
    ),
    ReservationStatus.CONFIRMED: frozenset(
        {ReservationStatus.CANCELLED, ReservationStatus.COMPLETED}
    ),
}


def can_move(current: ReservationStatus, target: ReservationStatus) -> bool:
    return target in ALLOWED.get(current, frozenset())


@dataclass(frozen=True, slots=True)
class RefundTier:
    days_before: int
    refund_percent: int


def refund_percent(policy: Sequence[RefundTier], *, today: date, check_in: date) -> int:
    """The tier with the largest ``days_before`` not exceeding the days left before check-in."""
    days_left = (check_in - today).days
    applicable = [tier for tier in policy if tier.days_before <= days_left]
    if not applicable:
        return 0
    return max(applicable, key=lambda tier: tier.days_before).refund_percent


def refund_amount(paid: int, percent: int) -> int:
    """Whole won, rounded down: the guest never receives more than the policy promises."""
    return paid * percent // 100


def payable(subtotal: int, coupon_discount: int, points: int) -> int:
    return max(0, subtotal - coupon_discount - points)
