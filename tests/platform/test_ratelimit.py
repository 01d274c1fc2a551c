"""GCRA rate limits: the same Lua script on a real Redis and on embedded fakeredis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest
from prometheus_client import REGISTRY

from haot.platform.errors import RateLimited
from haot.platform.ratelimit import Rate, RateLimiter
from haot.platform.redis import MAX_CONNECTIONS, Redis, create_redis
from tests.conftest import make_settings


@pytest.fixture(params=["redis", "fakeredis"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """The clients the platform builds: a real Redis, or the embedded fakeredis (with Lua)."""
    url = request.getfixturevalue("redis_available") if request.param == "redis" else ""
    client = create_redis(make_settings("sqlite+aiosqlite://", redis_url=url))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def limiter(redis_client: Redis) -> RateLimiter:
    # A prefix per test: runs sharing the Redis database never see each other's counters.
    return RateLimiter(redis_client, prefix=f"rl-test-{uuid.uuid4().hex[:8]}")


async def allowed(limiter: RateLimiter, name: str, subject: str, rate: Rate, n: int) -> int:
    count = 0
    for _ in range(n):
        try:
            await limiter.hit(name, subject, rate)
            count += 1
        except RateLimited:
            pass
    return count


async def test_allows_limit_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    rate = Rate(5, 60)
    for _ in range(5):
        await limiter.hit("login", "kim", rate)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("login", "kim", rate)
    # One more request is allowed once one emission interval (60 s / 5 = 12 s) has passed.
    assert 11 <= refused.value.retry_after <= 12
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
    assert refused.value.status == 429
    assert refused.value.code == "rate_limited"


async def test_retry_after_is_at_least_one_second(limiter: RateLimiter) -> None:
    rate = Rate(2, 0.5)  # the wait is about 250 ms: the header still never says "0"
    await limiter.hit("quick", "kim", rate)
    await limiter.hit("quick", "kim", rate)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("quick", "kim", rate)
    assert refused.value.retry_after == 1
    assert refused.value.headers["Retry-After"] == "1"


def test_rates_must_be_positive() -> None:
    for limit, period in ((0, 60), (-1, 60), (5, 0), (5, -1)):
        with pytest.raises(ValueError, match="invalid rate"):
            Rate(limit, period)


async def test_refills_over_time(limiter: RateLimiter) -> None:
    rate = Rate(2, 1.0)  # one request back every 0.5 s, bursts of 2
    assert await allowed(limiter, "claim", "kim", rate, 3) == 2
    await asyncio.sleep(0.6)
    assert await allowed(limiter, "claim", "kim", rate, 2) == 1
    await asyncio.sleep(1.1)
    assert await allowed(limiter, "claim", "kim", rate, 3) == 2


async def test_subjects_and_limits_are_independent(limiter: RateLimiter) -> None:
    rate = Rate(3, 60)
    assert await allowed(limiter, "login", "kim", rate, 5) == 3
    assert await allowed(limiter, "login", "lee", rate, 5) == 3
    assert await allowed(limiter, "claim", "kim", rate, 5) == 3
    # Subjects that look like key syntax stay distinct.
    assert await allowed(limiter, "login", "kim}", rate, 5) == 3
    assert await allowed(limiter, "login", "{kim", rate, 5) == 3


async def test_concurrent_hits_allow_exactly_the_limit(limiter: RateLimiter) -> None:
    rate = Rate(50, 60)
    outcomes = await asyncio.gather(
        *(limiter.hit("drop", "kim", rate) for _ in range(200)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert [o for o in outcomes if isinstance(o, BaseException) and o not in refused] == []
    assert len(outcomes) - len(refused) == 50
    assert len(refused) == 150


async def test_a_burst_beyond_the_pool_waits_for_connections(redis_client: Redis) -> None:
    """More concurrent commands than pooled connections queue for a connection (a default
    redis-py pool raises MaxConnectionsError instead, which would be a 500 under load)."""
    key = f"burst-{uuid.uuid4().hex}"
    try:
        results = await asyncio.gather(
            *(redis_client.incr(key) for _ in range(MAX_CONNECTIONS * 3))
        )
        assert sorted(results) == list(range(1, MAX_CONNECTIONS * 3 + 1))
    finally:
        await redis_client.delete(key)


async def test_refusals_are_counted(limiter: RateLimiter) -> None:
    name = f"metric-{uuid.uuid4().hex[:6]}"
    await allowed(limiter, name, "kim", Rate(1, 60), 4)
    assert REGISTRY.get_sample_value("haot_rate_limited_total", {"limit": name}) == 3


async def test_a_bare_fakeredis_client_runs_the_script() -> None:
    """The script needs only what fakeredis[lua] offers (TIME, GET, SET PX)."""
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    try:
        limiter = RateLimiter(client, prefix=f"rl-bare-{uuid.uuid4().hex[:8]}")
        assert await allowed(limiter, "login", "kim", Rate(3, 60), 5) == 3
    finally:
        await client.aclose()


async def test_disabled_limiter_allows_everything(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, enabled=False, prefix=f"rl-off-{uuid.uuid4().hex[:8]}")
    assert await allowed(limiter, "login", "kim", Rate(1, 60), 20) == 20
