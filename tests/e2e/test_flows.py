"""End-to-end flows (issue 15, item 5) against each running deployment, over HTTP only: the
flows themselves are in ``flows.py``."""

from __future__ import annotations

from tests.e2e import flows
from tests.support.deployment import Deployment


async def test_book_and_pay(deployment: Deployment) -> None:
    await flows.book_and_pay(deployment)


async def test_last_room_race(deployment: Deployment) -> None:
    await flows.last_room_race(deployment)


async def test_coupon_drop(deployment: Deployment) -> None:
    await flows.coupon_drop(deployment)


async def test_cancel_with_refund(deployment: Deployment) -> None:
    await flows.cancel_with_refund(deployment)


async def test_points_after_completion(deployment: Deployment) -> None:
    await flows.points_after_completion(deployment)
