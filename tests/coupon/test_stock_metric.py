"""``haot_coupon_stock_remaining``: what Redis still admits across the active events, measured by
the claim pump (at most once a second), events without a quantity left out."""

from __future__ import annotations

import uuid

import pytest

from haot.coupon.issuance import STOCK_REMAINING
from haot.platform.settings import Settings
from tests.coupon.conftest import drive, issuance_of, open_drop, running

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


async def test_the_stock_gauge_follows_what_the_drops_still_admit(settings: Settings) -> None:
    async with running(settings, workers=False) as platform:
        issuance = issuance_of(platform)
        capped = await open_drop(platform, quantity=5)
        small = await open_drop(platform, quantity=2)
        await open_drop(platform, quantity=None)  # unlimited: no stock to count

        await issuance.pump_once(platform.transport)
        assert STOCK_REMAINING._value.get() == 7

        answers = await drive(issuance, capped, [uuid.uuid4() for _ in range(3)])
        answers += await drive(issuance, small, [uuid.uuid4() for _ in range(3)])
        assert sorted(a.code for a in answers) == ["accepted"] * 5 + ["coupon_sold_out"]
        issuance._backlog_gauge_at = 0.0  # the next pass measures again (not a second later)
        await issuance.pump_once(platform.transport)
        assert STOCK_REMAINING._value.get() == 2
