"""A drop through the Kafka transport (tansu): the pump publishes admitted claims to the coupon
topic, the persist consumer reads them in its consumer group and issues exactly the quantity."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest

from haot.platform.jobs import JOB_RUNS
from haot.platform.kafka import KafkaTransport
from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.coupon.conftest import (
    accepted,
    claim,
    drive,
    duplicate_holders,
    issuance_of,
    open_drop,
    redis_view,
    running,
    settle,
)
from tests.support.tansu import kafka_overrides

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres"]),
]


@pytest.fixture
def kafka_settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    return make_settings(
        settings.database_url,
        **kafka_overrides(kafka_bootstrap, "coupon", partitions=2),
        jobs_schedule=True,  # these tests reason about the scheduler's start-up sweep
    )


async def first_sweep_done(timeout: float = 20.0) -> None:
    """The job scheduler runs every job once at start; wait for the coupon sweep to have run
    (see ``test_a_sweep_while_claims_are_in_kafka_does_not_reopen_the_stock``)."""
    deadline = time.monotonic() + timeout
    counter = JOB_RUNS.labels("reconcile-coupons", "ok")
    start = counter._value.get()
    while counter._value.get() == start:
        assert time.monotonic() < deadline, "the job scheduler never ran reconcile-coupons"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_drop_through_kafka_issues_exactly_the_quantity(kafka_settings: Settings) -> None:
    quantity = 20
    async with running(kafka_settings) as platform:
        assert isinstance(platform.transport, KafkaTransport)
        await first_sweep_done()
        event_id = await open_drop(platform, quantity=quantity)
        users = [uuid.uuid4() for _ in range(100)]
        answers = await drive(issuance_of(platform), event_id, users * 2, concurrency=100)

        codes = Counter((a.status, a.code) for a in answers)
        assert sum(codes.values()) == 200
        assert codes[(202, "accepted")] == quantity
        assert set(codes) <= {
            (202, "accepted"),
            (409, "coupon_sold_out"),
            (409, "coupon_already_claimed"),
        }, codes
        wins = accepted(answers)
        view = await settle(platform, event_id, [a.claim_id for a in wins if a.claim_id], within=60)
        assert view.rows == view.issued == quantity
        assert set(view.coupons) == {a.user for a in wins}
        assert {status for status, _ in view.claims.values()} == {"ISSUED"}
        assert len(view.claims) == quantity
        assert await duplicate_holders(platform, event_id) == []
        cache = await redis_view(platform, event_id)
        assert (cache.remaining, cache.users, cache.backlog) == (0, quantity, 0)


async def test_a_sweep_while_claims_are_in_kafka_does_not_reopen_the_stock(
    kafka_settings: Settings,
) -> None:
    quantity = 20
    async with running(kafka_settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=quantity)
        issuance = issuance_of(platform)
        users = [uuid.uuid4() for _ in range(quantity)]
        assert {a.status for a in await drive(issuance, event_id, users)} == {202}
        # The pump publishes them to Kafka; no consumer has persisted them yet (lag).
        assert await issuance.pump_once(platform.transport) == quantity

        await platform.jobs.run("reconcile-coupons")

        cache = await redis_view(platform, event_id)
        assert (cache.remaining, cache.users) == (0, quantity)
        late = [await claim(issuance, event_id, user) for user in (uuid.uuid4(), users[0])]
        assert [a.code for a in late] == ["coupon_sold_out", "coupon_already_claimed"]
