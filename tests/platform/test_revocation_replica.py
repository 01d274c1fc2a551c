"""Each process keeps a replica of the revocation stamps (``Revocations.follow``) so a token check
costs no Redis round trip; a stamp written by one process reaches the others through the channel,
stamps written while a replica was away are loaded when it comes back, and a replica out of sync
falls back to reading Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from haot.platform.auth import Principal, Revocations, Role, TokenSigner
from haot.platform.clock import utcnow
from haot.platform.redis import Redis

SECRET = "replica-test-secret-0123456789abcdefghij"

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis_client(redis_available: str) -> AsyncIterator[Redis]:
    client: Redis = aioredis.Redis.from_url(redis_available)
    await client.flushdb()
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def following(revocations: Revocations) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(revocations.follow(stop))
    try:
        await eventually(lambda: _value(revocations.in_sync))
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def _value(value: bool) -> bool:
    return value


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def principal(user_id: uuid.UUID, *, seconds_ago: float = 1.0) -> Principal:
    return Principal(user_id, Role.USER, utcnow() - timedelta(seconds=seconds_ago))


async def test_a_stamp_from_another_process_reaches_the_replica_without_a_redis_read(
    redis_client: Redis,
) -> None:
    writer = Revocations(redis_client, ttl_seconds=900)
    reader = Revocations(redis_client, ttl_seconds=900)
    user = uuid.uuid4()
    async with following(reader):
        old_token = principal(user)
        assert not await reader.is_revoked(old_token)
        await writer.revoke_tokens_issued_before(user, utcnow())
        await eventually(lambda: reader.is_revoked(old_token), within=1.0)
        # Answered from the replica: the user's key is gone, the replica still knows.
        await redis_client.delete(Revocations.key(user))
        assert await reader.is_revoked(old_token)
        assert not await reader.is_revoked(principal(user, seconds_ago=-1.0))
        assert not await reader.is_revoked(principal(uuid.uuid4()))


async def test_stamps_written_while_away_are_loaded_on_subscribe(redis_client: Redis) -> None:
    writer = Revocations(redis_client, ttl_seconds=900)
    user = uuid.uuid4()
    await writer.revoke_tokens_issued_before(user, utcnow())
    reader = Revocations(redis_client, ttl_seconds=900)
    async with following(reader):
        await redis_client.delete(Revocations.key(user))  # only the index can tell now
        assert await reader.is_revoked(principal(user))


async def test_out_of_sync_the_check_reads_redis(redis_client: Redis) -> None:
    writer = Revocations(redis_client, ttl_seconds=900)
    reader = Revocations(redis_client, ttl_seconds=900)  # never followed
    user = uuid.uuid4()
    await writer.revoke_tokens_issued_before(user, utcnow())
    assert not reader.in_sync
    assert await reader.is_revoked(principal(user))
    await redis_client.delete(Revocations.key(user))
    assert not await reader.is_revoked(principal(user))


async def test_a_lost_connection_drops_back_to_reads_and_resyncs(
    redis_available: str, redis_client: Redis
) -> None:
    name = f"replica-{uuid.uuid4().hex[:8]}"
    own: Redis = aioredis.Redis.from_url(redis_available, client_name=name)
    reader = Revocations(own, ttl_seconds=900)
    writer = Revocations(redis_client, ttl_seconds=900)
    user = uuid.uuid4()
    try:
        async with following(reader):
            # Kill the replica's subscription from the server side; the stamp written meanwhile
            # reaches it by the reload after it resubscribes (or by reads until then).
            clients = [
                c for c in await redis_client.client_list(_type="pubsub") if c["name"] == name
            ]
            assert clients
            await writer.revoke_tokens_issued_before(user, utcnow())
            for client in clients:
                await redis_client.client_kill_filter(_id=client["id"])
            await redis_client.delete(Revocations.key(user))
            await eventually(lambda: reader.is_revoked(principal(user)), within=5.0)
            await eventually(lambda: _value(reader.in_sync), within=5.0)
            assert await reader.is_revoked(principal(user))
    finally:
        await own.aclose()


async def test_the_index_forgets_stamps_older_than_any_token(redis_client: Redis) -> None:
    revocations = Revocations(redis_client, ttl_seconds=60)
    stale, fresh = uuid.uuid4(), uuid.uuid4()
    await revocations.revoke_tokens_issued_before(stale, utcnow() - timedelta(hours=1))
    await revocations.revoke_tokens_issued_before(fresh, utcnow())
    members = {m.decode() for m in await redis_client.zrange(Revocations.INDEX, 0, -1)}
    assert members == {str(fresh)}


async def test_signed_tokens_round_trip_through_the_replica(redis_client: Redis) -> None:
    signer = TokenSigner(SECRET, issuer="haot", audience="haot-api", ttl_seconds=900)
    writer = Revocations(redis_client, ttl_seconds=900)
    reader = Revocations(redis_client, ttl_seconds=900)
    user = uuid.uuid4()
    async with following(reader):
        before = signer.verify(signer.issue(user, Role.USER).token)
        stamp = utcnow()
        await writer.revoke_tokens_issued_before(user, stamp)
        after = signer.verify(signer.issue(user, Role.USER, now=stamp + timedelta(0, 0, 1)).token)
        await eventually(lambda: reader.is_revoked(before), within=1.0)
        assert not await reader.is_revoked(after)


async def test_a_late_older_stamp_never_lowers_a_newer_one(redis_client: Redis) -> None:
    """The outbox may deliver a password change's revocation after a later deactivation's: the
    tokens the later one voided must stay void, in Redis and in every replica."""
    writer = Revocations(redis_client, ttl_seconds=900)
    reader = Revocations(redis_client, ttl_seconds=900)  # out of sync: reads Redis
    user = uuid.uuid4()
    between = principal(user, seconds_ago=5.0)  # issued after the first change, before the second
    await writer.revoke_tokens_issued_before(user, utcnow())
    await writer.revoke_tokens_issued_before(user, utcnow() - timedelta(seconds=10))  # late
    assert await reader.is_revoked(between)
    assert await writer.is_revoked(between)
