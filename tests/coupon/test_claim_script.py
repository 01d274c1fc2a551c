"""The claim script is sent once (EVALSHA by its digest afterwards) and survives Redis forgetting
it: SCRIPT FLUSH, or a restart, must cost one reload, never a failed claim."""

from __future__ import annotations

import uuid

import pytest

from haot.platform.settings import Settings
from tests.coupon.conftest import ACCEPTED, claim, issuance_of, open_drop, running

pytestmark = pytest.mark.redis


async def test_a_claim_after_script_flush_reloads_the_script(settings: Settings) -> None:
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=10)
        issuance = issuance_of(platform)
        assert (await claim(issuance, event_id, uuid.uuid4())).code == ACCEPTED

        await platform.redis.script_flush()
        after_flush = await claim(issuance, event_id, uuid.uuid4())

        assert (after_flush.status, after_flush.code) == (202, ACCEPTED)
        sha = issuance._drops._script.sha
        assert (await platform.redis.script_exists(sha)) == [True]
