"""Admin pages: users, coupons and coupon events (a drop watched live), points, payments and jobs
(SPEC: ``/admin``, ``/admin/coupon-events``, ``/admin/users``, ``/admin/points``). Every rule is the
API's; the page shows its answer. ``router`` holds them all, in the order they are matched."""

from __future__ import annotations

from fastapi import APIRouter

from haot.web.admin import coupons, events, operations, points, reviews, users

router = APIRouter(include_in_schema=False)
# No two of these share a path: each keeps its own routes in the order they must be matched.
for module in (operations, users, coupons, events, points, reviews):
    router.include_router(module.router)
