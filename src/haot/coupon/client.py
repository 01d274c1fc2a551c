"""The coupon context's public interface for other contexts (the reservation saga): in-process in
the all-in-one app, over HTTP to the coupon service in a split deployment (ADR 0018). Both raise
the same errors."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from haot.coupon.service import CouponNotUsable, CouponService
from haot.platform.service_client import ServiceClient

# The refusals the coupon service answers to these calls, as the in-process client raises them.
ERRORS = {CouponNotUsable.code: CouponNotUsable}


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


class HttpCouponClient:
    """Satisfies ``haot.reservation.ports.CouponPort`` against the coupon service."""

    def __init__(self, http: ServiceClient) -> None:
        self._http = http

    async def discount_for(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        query = urlencode(
            {"user_id": str(user_id), "lodging_id": str(lodging_id), "order_amount": order_amount}
        )
        answer = await self._http.call(
            "GET",
            f"/internal/v1/coupon/user-coupons/{user_coupon_id}/discount?{query}",
            idempotent=True,  # a read
        )
        return int(answer["discount"])

    async def reserve(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        reservation_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        # Keyed by the reservation: the coupon service applies a repeat once.
        answer = await self._http.call(
            "POST",
            f"/internal/v1/coupon/user-coupons/{user_coupon_id}/reserve",
            json={
                "user_id": str(user_id),
                "reservation_id": str(reservation_id),
                "lodging_id": str(lodging_id),
                "order_amount": order_amount,
            },
            idempotent=True,
        )
        return int(answer["discount"])
