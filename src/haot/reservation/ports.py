"""What the reservation saga needs from other contexts, as it needs it. Each context provides an
implementation (in-process today; HTTP for a split deployment).

Undoing a step is not part of these ports: a failed, expired or cancelled reservation emits an
event, and each context's consumer undoes its own step (idempotently, from the outbox)."""

from __future__ import annotations

import uuid
from typing import Protocol

from haot.platform.errors import Conflict


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


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough points"
