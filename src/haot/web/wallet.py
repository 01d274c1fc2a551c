"""Guest pages around the stay: coupon events with their claim, my coupons, my points, my account
(SPEC: ``/coupon-events``, ``/coupons``, ``/points``). Every rule is the API's; the page shows its
answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
