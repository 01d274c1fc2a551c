"""`make run`'s demo data: created through the services, and a second run adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from haot.bootstrap import build_platform
from haot.coupon.models import CouponEvent
from haot.lodging.models import Lodging
from haot.platform.settings import Settings
from haot.point.models import Lot
from haot.seed import seed


async def count(settings: Settings, model: type) -> int:
    platform = build_platform(settings)
    try:
        async with platform.databases.sessions_for("lodging")() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    finally:
        await platform.stop()


async def test_seed_creates_the_demo_once(settings: Settings) -> None:
    await seed(settings)
    assert await count(settings, Lodging) == 60
    assert await count(settings, CouponEvent) == 1
    assert await count(settings, Lot) == 2
    await seed(settings)
    assert await count(settings, Lodging) == 60
    assert await count(settings, CouponEvent) == 1
