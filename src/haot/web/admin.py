"""Admin pages: users, coupons and coupon events (a drop watched live), points, payments and jobs
(SPEC: ``/admin``, ``/admin/coupon-events``, ``/admin/users``, ``/admin/points``). Every rule is the
API's; the page shows its answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
