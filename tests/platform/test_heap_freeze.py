"""A served process moves what warm-up built (the offer index above all) out of the collector's
reach, so full collections stop scanning it: ``make bench`` saw p99 fall from about 90 ms to
20-30 ms on warm searches and coupon claims."""

from __future__ import annotations

import gc

from asgi_lifespan import LifespanManager

from haot.app import create_app
from haot.platform.settings import Settings


async def test_a_served_app_freezes_what_warm_up_built(settings: Settings) -> None:
    gc.unfreeze()
    try:
        async with LifespanManager(create_app(settings, freeze_heap_when_warm=True)):
            frozen = gc.get_freeze_count()
        assert frozen > 0
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


async def test_apps_built_for_tests_and_tools_leave_the_collector_alone(
    settings: Settings,
) -> None:
    gc.unfreeze()
    async with LifespanManager(create_app(settings)):
        assert gc.get_freeze_count() == 0
