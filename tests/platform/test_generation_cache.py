"""GenerationCache: read-through entries that a generation bump retires, on a real Redis, on the
embedded fakeredis, and on a client that answers bytes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from haot.platform.cache import GenerationCache
from haot.platform.redis import Redis, create_redis
from tests.conftest import make_settings

TTL = timedelta(seconds=30)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Thing(BaseModel):
    name: str
    at: datetime
    id: uuid.UUID


@pytest.fixture(params=["redis", "fakeredis", "redis-bytes"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """The clients the platform builds (a real Redis, the embedded fakeredis), and a real Redis
    client that does not decode replies."""
    if request.param == "redis-bytes":
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_available"))
    else:
        url = request.getfixturevalue("redis_available") if request.param == "redis" else ""
        client = create_redis(make_settings("sqlite+aiosqlite://", redis_url=url))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def namespace() -> str:
    # A namespace per test: runs sharing the Redis database never see each other's entries.
    return f"gc-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cache(redis_client: Redis, namespace: str) -> GenerationCache:
    return GenerationCache(redis_client, namespace=namespace, ttl=TTL)


@dataclass
class Source:
    """The rows behind the cache: what a load reads, and how many loads there were."""

    name: str = "first"
    loads: int = 0
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    async def load(self) -> Thing:
        self.loads += 1
        return Thing(name=self.name, at=NOW, id=self.id)

    def bounded(self, valid_until: datetime | None) -> BoundedLoad:
        return BoundedLoad(self, valid_until)


@dataclass
class BoundedLoad:
    source: Source
    valid_until: datetime | None

    async def __call__(self) -> tuple[Thing, datetime | None]:
        return await self.source.load(), self.valid_until


async def keys(redis: Redis, namespace: str) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k for k in await redis.keys(f"{namespace}:*")}


async def test_a_second_read_is_served_from_the_cache(cache: GenerationCache) -> None:
    source = Source()
    first = await cache.get_or_load("thing", Thing, source.load, params="a")
    source.name = "changed behind the cache's back"
    second = await cache.get_or_load("thing", Thing, source.load, params="a")
    assert second == first
    assert second.name == "first"
    assert source.loads == 1


async def test_entries_of_other_params_kinds_and_scopes_are_apart(cache: GenerationCache) -> None:
    source = Source()
    await cache.get_or_load("thing", Thing, source.load, params="a")
    await cache.get_or_load("thing", Thing, source.load, params="b")
    await cache.get_or_load("other", Thing, source.load, params="a")
    await cache.get_or_load("thing", Thing, source.load, scope="kim", params="a")
    assert source.loads == 4


async def test_a_read_after_invalidate_loads_again(cache: GenerationCache) -> None:
    source = Source()
    await cache.get_or_load("thing", Thing, source.load, params="a")
    source.name = "second"
    await cache.invalidate()
    assert (await cache.get_or_load("thing", Thing, source.load, params="a")).name == "second"
    assert (await cache.get_or_load("thing", Thing, source.load, params="a")).name == "second"
    assert source.loads == 2


async def test_invalidating_a_scope_leaves_other_scopes_cached(cache: GenerationCache) -> None:
    kim, lee = Source(), Source()
    await cache.get_or_load("balance", Thing, kim.load, scope="kim")
    await cache.get_or_load("balance", Thing, lee.load, scope="lee")
    kim.name = lee.name = "second"
    await cache.invalidate("kim")
    assert (await cache.get_or_load("balance", Thing, kim.load, scope="kim")).name == "second"
    assert (await cache.get_or_load("balance", Thing, lee.load, scope="lee")).name == "first"
    assert (kim.loads, lee.loads) == (2, 1)


async def test_a_slow_reader_that_loaded_before_a_bump_is_never_read(
    cache: GenerationCache,
) -> None:
    """The reader loads the old rows, the writer commits and bumps, then the reader stores what it
    loaded: under the old generation, so every later read misses it and loads the new rows."""
    source = Source(name="old")
    loaded, go_on = asyncio.Event(), asyncio.Event()

    async def slow_load() -> Thing:
        value = await source.load()
        loaded.set()
        await go_on.wait()
        return value

    slow_reader = asyncio.create_task(cache.get_or_load("thing", Thing, slow_load, params="a"))
    await loaded.wait()
    source.name = "new"  # the writer's change commits ...
    await cache.invalidate()  # ... and bumps the generation
    go_on.set()
    assert (await slow_reader).name == "old"  # what it read before the change, stored late

    assert (await cache.get_or_load("thing", Thing, source.load, params="a")).name == "new"
    assert (await cache.get_or_load("thing", Thing, source.load, params="a")).name == "new"
    assert source.loads == 2


async def test_entries_expire_after_the_ttl(
    cache: GenerationCache, redis_client: Redis, namespace: str
) -> None:
    await cache.get_or_load("thing", Thing, Source().load, params="a")
    (entry,) = await keys(redis_client, namespace)
    left = timedelta(milliseconds=await redis_client.pttl(entry))
    assert TTL - timedelta(seconds=2) < left <= TTL


async def test_keys_and_hash_tags_are_those_the_contexts_deployed(
    cache: GenerationCache, redis_client: Redis, namespace: str
) -> None:
    """Lodging (one generation, params) and point (a generation per user) shared the generation
    names before they shared the class; a rename would split the generations during a rolling
    deploy. Entries carry their generation in the value (one round trip per read)."""
    source = Source()
    await cache.invalidate()
    await cache.get_or_load("search", Thing, source.load, params="a")
    await cache.invalidate("kim")
    await cache.get_or_load_bounded("balance", Thing, source.bounded(None), now=NOW, scope="kim")
    digest = "ca978112ca1bbdcafac231b39a23dc4d"  # sha256("a")[:32]
    assert await keys(redis_client, namespace) == {
        f"{namespace}:cache-gen",
        f"{namespace}:search:{digest}",
        f"{namespace}:gen:{{kim}}",
        f"{namespace}:balance:{{kim}}",
    }


async def test_a_bounded_entry_is_served_only_before_its_bound(cache: GenerationCache) -> None:
    source = Source()
    load = source.bounded(NOW + timedelta(hours=1))

    first = await cache.get_or_load_bounded("balance", Thing, load, now=NOW, scope="kim")
    source.name = "second"
    later = NOW + timedelta(minutes=59, seconds=59)
    assert await cache.get_or_load_bounded("balance", Thing, load, now=later, scope="kim") == first
    assert source.loads == 1

    at_bound = NOW + timedelta(hours=1)
    load.valid_until = None
    reloaded = await cache.get_or_load_bounded("balance", Thing, load, now=at_bound, scope="kim")
    assert reloaded.name == "second"
    far = NOW + timedelta(days=400)
    assert await cache.get_or_load_bounded("balance", Thing, load, now=far, scope="kim") == reloaded
    assert source.loads == 2


async def test_a_bounded_entry_leaves_redis_by_its_bound(
    cache: GenerationCache, redis_client: Redis, namespace: str
) -> None:
    soon = Source().bounded(NOW + timedelta(seconds=2))
    await cache.get_or_load_bounded("balance", Thing, soon, now=NOW, scope="kim")
    entry = f"{namespace}:balance:{{kim}}"
    assert 0 < await redis_client.pttl(entry) <= 2000

    later = Source().bounded(NOW + timedelta(days=1))
    await cache.get_or_load_bounded("balance", Thing, later, now=NOW, scope="lee")
    entry = f"{namespace}:balance:{{lee}}"
    assert timedelta(milliseconds=await redis_client.pttl(entry)) > TTL - timedelta(seconds=2)


async def test_a_value_already_past_its_bound_is_not_stored(
    cache: GenerationCache, redis_client: Redis, namespace: str
) -> None:
    source = Source()
    stale = source.bounded(NOW)
    await cache.get_or_load_bounded("balance", Thing, stale, now=NOW, scope="kim")
    await cache.get_or_load_bounded("balance", Thing, stale, now=NOW, scope="kim")
    assert source.loads == 2
    assert await keys(redis_client, namespace) == set()


async def test_a_bounded_entry_is_invalidated_like_any_other(cache: GenerationCache) -> None:
    source = Source()
    load = source.bounded(None)
    await cache.get_or_load_bounded("balance", Thing, load, now=NOW, scope="kim")
    source.name = "second"
    await cache.invalidate("kim")
    got = await cache.get_or_load_bounded("balance", Thing, load, now=NOW, scope="kim")
    assert got.name == "second"


def test_a_ttl_must_be_positive(namespace: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        GenerationCache(aioredis.Redis(), namespace=namespace, ttl=timedelta(0))


def count_reads(cache: GenerationCache, wanted: int) -> asyncio.Event:
    """An event set once ``wanted`` cache reads have returned: each reader then goes on, without
    yielding, to load or to wait for the load in flight, so the test knows every reader is
    past its miss without sleeping for it."""
    done = asyncio.Event()
    reads = 0
    original = cache._read

    async def counted(key: str, scope: str | None) -> tuple[str, str | None]:
        nonlocal reads
        answer = await original(key, scope)
        reads += 1
        if reads >= wanted:
            done.set()
        return answer

    cache._read = counted  # type: ignore[method-assign]
    return done


async def test_concurrent_misses_of_one_entry_load_it_once(cache: GenerationCache) -> None:
    """An entry that expires under load must not send every request in flight to the database."""
    source = Source()
    release = asyncio.Event()
    all_missed = count_reads(cache, 20)

    async def slow_load() -> str:
        source.loads += 1
        await release.wait()
        return f"page {source.loads}"

    readers = [
        asyncio.create_task(cache.get_text_or_load("page", slow_load, params="q"))
        for _ in range(20)
    ]
    await all_missed.wait()
    release.set()
    assert await asyncio.gather(*readers) == ["page 1"] * 20
    assert source.loads == 1


async def test_a_failed_load_fails_its_waiters_and_the_next_miss_loads_again(
    cache: GenerationCache,
) -> None:
    release = asyncio.Event()
    calls = 0
    all_missed = count_reads(cache, 5)

    async def failing_load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("database down")

    readers = [
        asyncio.create_task(cache.get_text_or_load("page", failing_load, params="q"))
        for _ in range(5)
    ]
    await all_missed.wait()
    release.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert calls == 1

    async def good_load() -> str:
        return "fresh"

    assert await cache.get_text_or_load("page", good_load, params="q") == "fresh"


async def test_waiters_load_for_themselves_when_the_loading_caller_is_cancelled(
    cache: GenerationCache,
) -> None:
    started = asyncio.Event()

    async def never_finishes() -> str:
        started.set()
        await asyncio.Event().wait()
        return "unreachable"

    async def quick() -> str:
        return "loaded by the waiter"

    both_missed = count_reads(cache, 2)
    leader = asyncio.create_task(cache.get_text_or_load("page", never_finishes, params="q"))
    await started.wait()
    waiter = asyncio.create_task(cache.get_text_or_load("page", quick, params="q"))
    await both_missed.wait()  # the waiter now waits for the leader's load
    leader.cancel()
    assert await waiter == "loaded by the waiter"
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_reader_of_a_newer_generation_does_not_wait_for_an_older_load(
    cache: GenerationCache,
) -> None:
    release = asyncio.Event()

    async def old_load() -> str:
        await release.wait()
        return "old"

    async def new_load() -> str:
        return "new"

    first_missed = count_reads(cache, 1)
    old_reader = asyncio.create_task(cache.get_text_or_load("page", old_load, params="q"))
    await first_missed.wait()  # its load of the old generation is in flight
    await cache.invalidate()
    assert await cache.get_text_or_load("page", new_load, params="q") == "new"
    release.set()
    assert await old_reader == "old"
