"""What the reservation saga needs from other contexts, as it needs it. Each context provides an
implementation (in-process or HTTP); until the coupon and point contexts exist, the ``Without*``
implementations refuse coupon and point use with a clear error instead of pretending.

Undoing a step is not part of these ports: a failed, expired or cancelled reservation emits an
event, and each context's consumer undoes its own step (idempotently, from the outbox)."""

from __future__ import annotations

import uuid
from typing import Protocol

from haot.platform.errors import InvalidInput


class CouponPort(Protocol):
    async def discount_for(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        """The discount the coupon gives on this order (checks it, changes nothing)."""

    async def reserve(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        reservation_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        """ISSUED → RESERVED for this reservation (idempotent); returns the discount."""


class PointPort(Protocol):
    async def spendable(self, *, user_id: uuid.UUID) -> int: ...

    async def hold(self, *, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        """Hold ``amount`` points for the reservation (idempotent); raises when short."""


class PaymentPort(Protocol):
    async def create_payment(
        self, *, reservation_id: uuid.UUID, user_id: uuid.UUID, amount: int, order_name: str
    ) -> tuple[str, str]:
        """Create (idempotently) and pre-register the payment; returns
        (payment_id, checkout_url)."""


class CouponNotUsable(InvalidInput):
    code = "coupon_not_usable"
    title = "The coupon cannot be used for this reservation"


class InsufficientPoints(InvalidInput):
    code = "insufficient_points"
    title = "Not enough points"


class WithoutCoupons:
    async def discount_for(self, **_: object) -> int:
        raise CouponNotUsable("Coupons are not available yet")

    async def reserve(self, **_: object) -> int:
        raise CouponNotUsable("Coupons are not available yet")


class WithoutPoints:
    async def spendable(self, **_: object) -> int:
        return 0

    async def hold(self, **_: object) -> None:
        raise InsufficientPoints("Points are not available yet")
