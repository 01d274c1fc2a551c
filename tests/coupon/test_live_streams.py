"""Live claim outcomes over server-sent events, against a real server and real Redis (issue 11,
item 4): ``id:`` and ``retry:`` on the wire and resume with ``Last-Event-ID``; one Redis
subscription per process however many streams; a per-user limit on open streams whose leases come
back when a browser leaves; a cookie for a browser's EventSource."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from haot.coupon.issuance import claim_topic
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.live import Fanout, StreamLeases
from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.coupon.conftest import Api, http_drop, problem
from tests.coupon.test_claim_rules import claims_url
from tests.support.server import real_server

pytestmark = [pytest.mark.redis]

STREAM = "/api/v1/coupon-claims/stream"


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    # Streams and Redis are what is under test: one backend is enough.
    return make_settings(settings.database_url, live_streams_per_user=3)


@dataclass
class Frames:
    """What one stream said, frame by frame."""

    retry: int | None = None
    live: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[dict[str, str]] = field(default_factory=list)
    ended: bool = False


async def read(http: httpx.AsyncClient, frames: Frames, **request: object) -> int:
    """Reads a stream into ``frames`` until it ends (or the task is cancelled)."""
    async with http.stream("GET", STREAM, **request) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            await response.aread()
            return response.status_code
        current: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith("retry: "):
                frames.retry = int(line.removeprefix("retry: "))
            elif line == ": live":
                frames.live.set()
            elif line.startswith(("id: ", "event: ", "data: ")):
                name, _, value = line.partition(": ")
                current[name] = value
            elif line == "" and current:
                frames.events.append(current)
                current = {}
    frames.ended = True
    return 200


@contextlib.asynccontextmanager
async def stream(
    http: httpx.AsyncClient, **request: object
) -> AsyncIterator[tuple[Frames, asyncio.Task[int]]]:
    frames = Frames()
    task = asyncio.create_task(read(http, frames, **request))
    try:
        yield frames, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: object, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


def outcome(n: int) -> bytes:
    return orjson.dumps({"claim_id": f"clm_{n}", "status": "ISSUED"})


async def publish(platform: Platform, user: uuid.UUID, *numbers: int) -> None:
    await platform.live.publisher.publish([(claim_topic(user), outcome(n)) for n in numbers])


def claim_numbers(frames: Frames) -> list[int]:
    return [int(orjson.loads(e["data"])["claim_id"].removeprefix("clm_")) for e in frames.events]


def bearer(platform: Platform, user: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.signer.issue(user, Role.USER).token}"}


async def test_frames_carry_ids_and_retry_and_a_resumed_stream_gets_what_it_missed(
    live_settings: Settings,
) -> None:
    async with (
        real_server(live_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        user = uuid.uuid4()
        headers = bearer(platform, user)
        async with stream(http, headers=headers) as (first, _):
            await until(first.live.is_set)
            await publish(platform, user, 1, 2)
            await until(lambda: len(first.events) == 2)
        assert first.retry is not None
        assert first.retry > 0
        assert [e["event"] for e in first.events] == ["claim", "claim"]
        ids = [e["id"] for e in first.events]
        assert len(set(ids)) == 2
        assert all("-" in i for i in ids)
        assert claim_numbers(first) == [1, 2]

        # Away for a moment: outcomes 3 and 4 happen; the browser comes back with the last id
        # it saw, and gets exactly what it missed, then live ones.
        await publish(platform, user, 3, 4)
        async with stream(http, headers={**headers, "Last-Event-ID": ids[-1]}) as (again, _):
            await until(lambda: len(again.events) == 2)
            await until(again.live.is_set)
            await publish(platform, user, 5)
            await until(lambda: len(again.events) == 3)
        assert claim_numbers(again) == [3, 4, 5]

        # A nonsense id is ignored (live only), never an error.
        async with stream(http, headers={**headers, "Last-Event-ID": "x'; DROP"}) as (odd, _):
            await until(odd.live.is_set)
            await publish(platform, user, 6)
            await until(lambda: len(odd.events) == 1)
        assert claim_numbers(odd) == [6]


async def test_every_stream_of_a_process_shares_one_subscription(settings: Settings) -> None:
    many = make_settings(settings.database_url, live_streams_per_user=40)
    async with (
        real_server(many) as (base, platform),
        httpx.AsyncClient(
            base_url=base, timeout=10, limits=httpx.Limits(max_connections=100)
        ) as http,
    ):
        user = uuid.uuid4()
        headers = bearer(platform, user)
        async with contextlib.AsyncExitStack() as streams:
            opened = [
                await streams.enter_async_context(stream(http, headers=headers)) for _ in range(30)
            ]
            for frames, _ in opened:
                await until(frames.live.is_set)
            channel = claim_topic(user).channel
            subscribers = dict(await platform.redis.pubsub_numsub(channel))
            assert subscribers[channel] == 1  # thirty streams, one subscription
            await publish(platform, user, 1)
            for frames, _ in opened:
                await until(lambda f=frames: len(f.events) == 1)  # type: ignore[misc]
            # The pool is untouched: streams hold no pool connection while they wait.
            assert await platform.redis.ping()
        await until(lambda: platform.live.fanout.channels == 0)
        assert dict(await platform.redis.pubsub_numsub(channel))[channel] == 0


async def test_a_user_may_hold_only_a_few_streams_and_leaving_gives_them_back(
    live_settings: Settings,
) -> None:
    async with (
        real_server(live_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        user, other = uuid.uuid4(), uuid.uuid4()
        headers = bearer(platform, user)
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(3):
                frames, _task = await streams.enter_async_context(stream(http, headers=headers))
                await until(frames.live.is_set)
            refused = await http.get(STREAM, headers=headers)
            assert problem(refused) == (429, "too_many_streams")
            assert int(refused.headers["Retry-After"]) >= 1
            # Another user is not affected.
            async with stream(http, headers=bearer(platform, other)) as (theirs, _):
                await until(theirs.live.is_set)
        # The browser left: the leases came back at once (not after they lapse).
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(3):
                frames, _task = await streams.enter_async_context(stream(http, headers=headers))
                await until(frames.live.is_set)


async def test_leases_lapse_when_a_process_dies_without_giving_them_back(
    live_settings: Settings,
) -> None:
    async with real_server(live_settings) as (_, platform):
        leases = StreamLeases(platform.redis, limit=2, lease_seconds=0.3)
        user = uuid.uuid4()
        assert await leases.take(user) is not None
        assert await leases.take(user) is not None
        assert await leases.take(user) is None
        await asyncio.sleep(0.4)  # nobody renewed them: a dead process's leases
        kept = await leases.take(user)
        assert kept is not None
        await leases.renew(user, kept)


async def test_a_stream_that_falls_behind_ends_and_resumes_without_loss(
    live_settings: Settings,
) -> None:
    """A browser that reads slower than outcomes arrive: its queue overflows, the stream ends,
    and the browser's reconnect with Last-Event-ID gets everything from the log."""
    async with (
        real_server(live_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        user = uuid.uuid4()
        fanout: Fanout = platform.live.fanout
        fanout._queue_size = 4  # a small queue, so that a burst overflows it
        headers = bearer(platform, user)
        async with stream(http, headers=headers) as (first, task):
            await until(first.live.is_set)
            await publish(platform, user, *range(1, 41))
            await asyncio.wait_for(task, 10)
        assert first.ended
        seen = claim_numbers(first)
        assert seen == list(range(1, len(seen) + 1))  # in order, a prefix
        last_id = first.events[-1]["id"] if first.events else "0-0"
        async with stream(http, headers={**headers, "Last-Event-ID": last_id}) as (rest, _):
            await until(lambda: len(seen) + len(rest.events) >= 40)
        assert seen + claim_numbers(rest) == list(range(1, 41))


async def test_a_browser_authenticates_its_event_source_with_the_session_cookie(
    live_settings: Settings,
) -> None:
    async with (
        real_server(live_settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        api = Api(http, platform)
        user = uuid.uuid4()
        opened = await http.post("/api/v1/auth/session", headers=bearer(platform, user))
        assert opened.status_code == 204
        cookie = opened.headers["set-cookie"]
        assert cookie.startswith("haot_session=")
        for attribute in ("HttpOnly", "SameSite=lax", "Path=/", "Max-Age="):
            assert attribute.lower() in cookie.lower()
        assert "secure" not in cookie.lower()  # plain http outside production
        assert opened.headers["cache-control"] == "no-store"
        assert "haot_session" in http.cookies

        # No header: the cookie alone opens the stream, and it is this user's stream.
        event_id = await http_drop(api, quantity=5)
        async with stream(http) as (frames, _):
            await until(frames.live.is_set)
            accepted = await http.post(claims_url(event_id), headers=bearer(platform, user))
            assert accepted.status_code == 202
            await until(lambda: len(frames.events) == 1)
        assert orjson.loads(frames.events[0]["data"])["claim_id"] == accepted.json()["claim_id"]

        # The cookie is good for streams only: writes still need the header.
        assert (await http.post(claims_url(event_id))).status_code == 401

        # A revoked token in the cookie is refused like in a header.
        await platform.revocations.revoke_tokens_issued_before(user, utcnow())
        assert problem(await http.get(STREAM)) == (401, "invalid_token")

        closed = await http.delete("/api/v1/auth/session")
        assert closed.status_code == 204
        assert "haot_session" not in http.cookies
        assert problem(await http.get(STREAM)) == (401, "unauthorized")

        http.cookies.set("haot_session", "not-a-jwt")
        assert problem(await http.get(STREAM)) == (401, "invalid_token")


async def test_opening_a_session_needs_a_token(live_settings: Settings) -> None:
    async with (
        real_server(live_settings) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        assert problem(await http.post("/api/v1/auth/session")) == (401, "unauthorized")
