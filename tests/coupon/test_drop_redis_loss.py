"""Redis loses its keys in the middle of a drop (FLUSHDB at about 30 % issued): claims answer 503 +
Retry-After while the reconciler rebuilds the event from the database, then issuing resumes; the
database never holds more than the quantity nor two coupons of one user. Also: the periodic
reconciler leaves a healthy drop alone."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis

from haot.coupon.drops import event_key
from haot.coupon.issuance import Issuance
from haot.coupon.repository import CouponRepository
from haot.platform.auth import Role
from haot.platform.errors import ServiceUnavailable
from haot.platform.settings import Settings
from tests.coupon.conftest import (
    ACCEPTED,
    Answer,
    accepted,
    claim,
    db_view,
    drive,
    duplicate_holders,
    http_drop,
    issuance_of,
    open_drop,
    problem,
    redis_view,
    running,
    serve,
    settle,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres"]),
]

QUANTITY = 100


async def flushdb(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_redis_flushed_mid_drop_pauses_then_resumes_without_over_issue(
    settings: Settings,
) -> None:
    async with running(settings) as platform:
        event_id = await open_drop(platform, quantity=QUANTITY)
        issuance = issuance_of(platform)
        # 30 % issued: thirty claims admitted and persisted.
        early = [uuid.uuid4() for _ in range(QUANTITY * 3 // 10)]
        first = await drive(issuance, event_id, early)
        assert {a.status for a in first} == {202}
        await settle(platform, event_id, [a.claim_id for a in first if a.claim_id])

        # Then the crowd (the early users among it), and Redis loses everything while its first
        # claims are in flight.
        crowd = [uuid.uuid4() for _ in range(2_000)]
        attempts = (crowd + early) * 3
        random.Random(5).shuffle(attempts)
        flushed_at: list[float] = []
        in_flight = asyncio.Event()
        admitted_in_crowd = Counter[int]()

        def on_answer(answer: Answer) -> None:
            # Flush once the crowd's first claims are admitted (a fixed delay would race the
            # claims' speed: batched, the whole stock can go within a few milliseconds).
            if answer.status == 202:
                admitted_in_crowd[202] += 1
                if admitted_in_crowd[202] >= 5:
                    in_flight.set()

        async def flush() -> None:
            await in_flight.wait()
            flushed_at.append(time.monotonic())  # started
            await flushdb(settings)
            flushed_at.append(time.monotonic())  # done

        answers, _ = await asyncio.gather(
            drive(
                issuance,
                event_id,
                attempts,
                # Small waves: claims are batched per loop turn, so 200 at once could take the
                # whole stock in one round trip, before the flush had a chance to land mid-drop.
                concurrency=20,
                retry_unavailable=100,
                on_answer=on_answer,
            ),
            flush(),
        )
        flushing, flushed = flushed_at

        codes = Counter((a.status, a.code) for a in answers)
        assert not [a for a in answers if a.status == 500], codes
        unavailable = [a for a in answers if a.status == 503]
        assert unavailable, f"no claim was refused during the rebuild: {codes}"
        assert {a.code for a in unavailable} == {"service_unavailable"}
        assert all(a.retry_after is not None and a.retry_after >= 1 for a in unavailable)
        assert not [a for a in answers if a.status == 503 and a.at < flushing]
        after = [a for a in accepted(answers) if a.at > flushed]
        assert after, "issuing did not resume after the rebuild"
        # The rebuilt event knows who holds a coupon: the early users are never admitted again.
        # (Quick retries of a 503 count against the per-user rate limit: 429 is fine too.)
        early_again = Counter(a.code for a in answers if a.user in set(early) and a.status != 503)
        assert early_again["coupon_already_claimed"] > 0, early_again
        assert set(early_again) <= {"coupon_already_claimed", "rate_limited"}, early_again

        # Claims admitted after the rebuild are all persisted; some admitted just before the
        # flush may be lost with the stream (their users could claim again).
        view = await settle(platform, event_id, [a.claim_id for a in after if a.claim_id])
        assert view.rows == view.issued == QUANTITY, (view.rows, view.issued)
        assert await duplicate_holders(platform, event_id) == []
        assert all(statuses == ["ISSUED"] for statuses in view.coupons.values())
        assert set(early) <= set(view.coupons)
        winners = {a.user for a in [*first, *accepted(answers)]}
        assert set(view.coupons) <= winners

        await platform.jobs.run("reconcile-coupons")
        cache = await redis_view(platform, event_id)
        assert cache.backlog == 0
        assert cache.remaining is not None
        assert cache.remaining + view.issued == QUANTITY


async def test_claim_during_rebuild_is_503_with_retry_after_then_accepted(
    settings: Settings,
) -> None:
    async with serve(settings) as api:
        event_id = await http_drop(api, quantity=10)
        url = f"/api/v1/coupon-events/{event_id}/claims"
        first = api.auth(Role.USER)
        assert (await api.http.post(url, headers=first)).status_code == 202
        await settle(api.platform, uuid.UUID(event_id), [])
        assert (await db_view(api.platform, uuid.UUID(event_id))).rows == 1

        await flushdb(api.platform.settings)
        second = api.auth(Role.USER)
        refused = await api.http.post(url, headers=second)
        assert problem(refused) == (503, "service_unavailable")
        assert int(refused.headers["Retry-After"]) >= 1

        for _ in range(100):
            answer = await api.http.post(url, headers=second)
            if answer.status_code != 503:
                break
            await asyncio.sleep(0.05)
        assert answer.status_code == 202, answer.text
        # The rebuilt event remembers who holds a coupon already.
        assert problem(await api.http.post(url, headers=first)) == (409, "coupon_already_claimed")
        await settle(api.platform, uuid.UUID(event_id), [answer.json()["claim_id"]])
        event = (await api.http.get(f"/api/v1/coupon-events/{event_id}")).json()
        assert (event["issued"], event["remaining"]) == (2, 8)


async def test_periodic_reconcile_leaves_a_healthy_drop_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep runs every 30 s in every worker, also in the middle of a drop. Claims that move
    from the stream to the database while it looks must not look like damage (a rebuild pauses
    the drop: 503 for everyone); real damage must still be repaired."""
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=100)
        issuance = issuance_of(platform)
        original = CouponRepository.get_event
        busy = False
        during: list[Answer] = []

        async def get_event(self: CouponRepository, *args: Any, **kwargs: Any) -> Any:
            """Each time the sweep has read the event, the drop goes on: five more claims are
            admitted and everything admitted is persisted, before the sweep reads Redis."""
            nonlocal busy
            event = await original(self, *args, **kwargs)
            task = asyncio.current_task()
            if task is not None and task.get_name() == "sweep" and not busy:
                busy = True
                try:
                    during.extend(await drive(issuance, event_id, [uuid.uuid4() for _ in range(5)]))
                    await issuance.pump_once(platform.transport)
                finally:
                    busy = False
            return event

        monkeypatch.setattr(CouponRepository, "get_event", get_event)
        first = await drive(issuance, event_id, [uuid.uuid4() for _ in range(10)])
        assert {a.status for a in first} == {202}

        results = []
        for _ in range(3):
            sweep = asyncio.create_task(platform.jobs.run("reconcile-coupons"), name="sweep")
            results.append(await sweep)
        assert Counter(a.code for a in during) == {"accepted": len(during)}
        assert [r["rebuilt"] for r in results] == [0, 0, 0]
        cache = await redis_view(platform, event_id)
        assert cache.state == "open"
        later = await drive(issuance, event_id, [uuid.uuid4() for _ in range(5)])
        assert {a.status for a in later} == {202}

        # Real damage (Redis lost stock) is still found and repaired.
        monkeypatch.setattr(CouponRepository, "get_event", original)
        await issuance.pump_once(platform.transport)
        view = await db_view(platform, event_id)
        await platform.redis.hset(event_key(event_id), "remaining", 3)
        assert (await platform.jobs.run("reconcile-coupons"))["rebuilt"] == 1
        cache = await redis_view(platform, event_id)
        assert (cache.state, cache.remaining) == ("open", 100 - view.issued)


async def test_a_rebuild_that_gave_up_does_not_leave_the_drop_paused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild pauses admission and waits (at most 20 s) for admitted claims to be persisted;
    if it gives up, the next sweep must finish the job instead of finding the counts fine and
    leaving every claim answered 503 for good."""
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=10)
        issuance = issuance_of(platform)
        assert (await claim(issuance, event_id, uuid.uuid4())).status == 202
        original = Issuance._drain
        gave_up = []

        async def slow_drain(self: Issuance, event: uuid.UUID, *, within: float = 20.0) -> None:
            if not gave_up:
                gave_up.append(event)
                raise ServiceUnavailable("admitted claims are still being persisted")
            await original(self, event, within=within)

        monkeypatch.setattr(Issuance, "_drain", slow_drain)
        with pytest.raises(ServiceUnavailable):
            await issuance.reconcile_event(event_id, force=True)
        assert (await claim(issuance, event_id, uuid.uuid4())).status == 503  # paused

        await issuance.pump_once(platform.transport)  # the claim gets persisted meanwhile
        await platform.jobs.run("reconcile-coupons")
        after = await claim(issuance, event_id, uuid.uuid4())
        assert (after.status, after.code) == (202, ACCEPTED)
        assert (await redis_view(platform, event_id)).state == "open"
