"""``AutoPipeline``: commands issued concurrently in one loop turn leave as one pipeline, and each
caller still gets exactly its own reply or its own error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from haot.platform.redis import AutoPipeline, Redis


@pytest.fixture(params=["redis", "fakeredis"])
async def client(request: pytest.FixtureRequest, redis_available: str) -> AsyncIterator[Redis]:
    if request.param == "redis":
        real: Redis = aioredis.Redis.from_url(redis_available, decode_responses=True)
        yield real
        await real.aclose()
    else:
        fake: Any = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield fake
        await fake.aclose()


def counting_pipelines(client: Redis) -> list[int]:
    """Patches ``client.pipeline`` to record the size of each pipeline sent."""
    sizes: list[int] = []
    original = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = original(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **k: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            return await execute(*a, **k)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe

    client.pipeline = pipeline  # type: ignore[method-assign]
    return sizes


async def test_concurrent_commands_share_one_round_trip_and_get_their_own_replies(
    client: Redis,
) -> None:
    sizes = counting_pipelines(client)
    batched = AutoPipeline(client)
    prefix = f"ap:{uuid.uuid4().hex}"
    await client.set(f"{prefix}:7", 6)

    replies = await asyncio.gather(
        *(batched.execute("INCRBY", f"{prefix}:{n}", n) for n in range(50))
    )

    assert replies == [n + 6 if n == 7 else n for n in range(50)]
    assert sizes == [50]


async def test_an_error_reply_reaches_only_its_caller(client: Redis) -> None:
    batched = AutoPipeline(client)
    prefix = f"ap:{uuid.uuid4().hex}"
    await client.rpush(f"{prefix}:list", "x")

    results = await asyncio.gather(
        batched.execute("INCR", f"{prefix}:a"),
        batched.execute("INCR", f"{prefix}:list"),  # WRONGTYPE
        batched.execute("INCR", f"{prefix}:b"),
        return_exceptions=True,
    )

    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
    assert results[2] == 1


async def test_batches_are_capped(client: Redis) -> None:
    sizes = counting_pipelines(client)
    batched = AutoPipeline(client, max_batch=100)
    prefix = f"ap:{uuid.uuid4().hex}"

    replies = await asyncio.gather(*(batched.execute("INCR", f"{prefix}:{n}") for n in range(350)))

    assert replies == [1] * 350
    assert max(sizes) <= 100
    assert sum(sizes) == 350


async def test_a_cancelled_caller_leaves_the_others_their_replies(client: Redis) -> None:
    batched = AutoPipeline(client)
    prefix = f"ap:{uuid.uuid4().hex}"
    first = asyncio.ensure_future(batched.execute("INCR", f"{prefix}:a"))
    second = asyncio.ensure_future(batched.execute("INCR", f"{prefix}:b"))
    first.cancel()

    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_round_trip_reaches_every_caller_of_the_batch() -> None:
    unreachable: Redis = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry_on_error=[]
    )
    batched = AutoPipeline(unreachable)
    try:
        results = await asyncio.gather(
            *(batched.execute("INCR", f"k{n}") for n in range(5)), return_exceptions=True
        )
    finally:
        await unreachable.aclose()

    assert all(isinstance(r, RedisConnectionError) for r in results), results


async def test_one_callers_commands_leave_together_with_the_others(client: Redis) -> None:
    sizes = counting_pipelines(client)
    batched = AutoPipeline(client)
    prefix = f"ap:{uuid.uuid4().hex}"
    await client.set(f"{prefix}:a", "1")
    await client.set(f"{prefix}:b", "2")

    many, single = await asyncio.gather(
        batched.execute_many(("GET", f"{prefix}:a"), ("GET", f"{prefix}:b"), ("GET", "nothing")),
        batched.execute("GET", f"{prefix}:b"),
    )
    assert many == ["1", "2", None]
    assert single == "2"
    assert sizes == [4]  # one round trip for all four

    await client.set(f"{prefix}:s", "text")
    with pytest.raises(ResponseError):
        await batched.execute_many(("INCR", f"{prefix}:s"), ("GET", f"{prefix}:a"))
    assert await batched.execute_many(("GET", f"{prefix}:a")) == ["1"]
