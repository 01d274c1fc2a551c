"""The coupon context's public interface for other contexts (the reservation saga)."""

from __future__ import annotations

import uuid

from haot.coupon.service import CouponService


class InProcessCouponClient:
    """Satisfies ``haot.reservation.ports.CouponPort`` in all-in-one mode."""

    def __init__(self, service: CouponService) -> None:
        self._service = service

    async def discount_for(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        return await self._service.discount_for(
            user_id=user_id,
            user_coupon_id=user_coupon_id,
            lodging_id=lodging_id,
            order_amount=order_amount,
        )

    async def reserve(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        reservation_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        return await self._service.reserve(
            user_id=user_id,
            user_coupon_id=user_coupon_id,
            reservation_id=reservation_id,
            lodging_id=lodging_id,
            order_amount=order_amount,
        )
