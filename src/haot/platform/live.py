"""Live streams to browsers (server-sent events), cheap enough for a flash crowd.

- **One Redis subscription per process.** ``Fanout`` holds a single pub/sub connection, subscribes
  to a channel while at least one stream of this process listens to it, and hands each message
  to those streams' in-memory queues. A stream costs a queue, not a pool connection: 256 streams
  of one user cannot starve the worker's other Redis calls.
- **Resumable.** ``publish`` appends each message to a short per-topic log (a capped Redis
  stream) and publishes it with its log id. Every frame carries that ``id:``; a browser that
  reconnects sends ``Last-Event-ID`` and first gets what it missed from the log, then live
  messages (none twice). A stream whose queue overflows, or whose process lost its
  subscription for a moment, ends: the browser reconnects (``retry:``) and resumes from the log.
- **Bounded per user.** Each open stream holds a lease in a per-user sorted set (``StreamLeases``),
  refreshed with every keep-alive and dropped on close; a crashed process's leases lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from haot.platform.errors import RateLimited
from haot.platform.redis import Redis, as_text

log = structlog.get_logger(__name__)

OPEN_STREAMS = Gauge(
    "haot_live_streams", "Server-sent event streams open", ["topic"], multiprocess_mode="livesum"
)
STREAMS_REFUSED = Counter(
    "haot_live_streams_refused_total", "Streams refused: the user had too many open", ["topic"]
)
STREAMS_CUT = Counter(
    "haot_live_streams_cut_total",
    "Streams ended for the browser to resume (queue overflow, lost subscription)",
    ["reason"],
)

_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

# Appends to the topic's log and publishes "<log id> <message>" on its channel, atomically: a
# subscriber never sees a message that a resuming reader could not find in the log.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
"""

# KEYS[1]: the user's leases; ARGV: now (ms), lease (ms), limit, lease id.
_TAKE_LEASE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class TooManyStreams(RateLimited):
    code = "too_many_streams"
    title = "Too many open streams"


@dataclass(frozen=True, slots=True)
class Topic:
    """Where one kind of live message for one audience goes: ``channel`` for the live copy,
    ``log`` for the resumable one (both hash-tagged by the audience)."""

    name: str  # the kind, for metrics and the SSE ``event:`` field
    audience: str

    @property
    def channel(self) -> str:
        return f"live:{self.name}:{{{self.audience}}}"

    @property
    def log(self) -> str:
        return f"live:{self.name}:{{{self.audience}}}:log"


class Publisher:
    """Appends live messages to their topics' logs and channels."""

    def __init__(self, redis: Redis, *, keep: int = 100, keep_seconds: int = 86_400) -> None:
        self._redis = redis
        self._script = redis.register_script(_PUBLISH)
        self._keep = keep
        self._keep_ms = keep_seconds * 1000

    async def publish(self, messages: list[tuple[Topic, bytes]]) -> None:
        """All in one round trip."""
        if not messages:
            return
        pipe = self._redis.pipeline(transaction=False)
        for topic, message in messages:
            await self._script(
                keys=[topic.log],
                args=[topic.channel, message, self._keep, self._keep_ms],
                client=pipe,
            )
        await pipe.execute()


_GAP = object()  # a stream's queue marker: messages may have been missed, end and resume


class Fanout:
    """One pub/sub connection per process, fanned out to in-memory queues by channel."""

    def __init__(self, redis: Redis, *, queue_size: int = 64) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._queues: dict[str, set[asyncio.Queue[object]]] = {}
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._changes = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[object]]:
        queue: asyncio.Queue[object] = asyncio.Queue(self._queue_size)
        async with self._changes:
            listeners = self._queues.setdefault(channel, set())
            if not listeners:
                await self._pubsub.subscribe(channel)
            listeners.add(queue)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="live-fanout")
        try:
            yield queue
        finally:
            # Shielded: a stream ends by cancellation (the browser left), and an unshielded await
            # here would be cancelled again, leaving the queue and the subscription behind.
            with anyio.CancelScope(shield=True):
                async with self._changes:
                    listeners = self._queues.get(channel, set())
                    listeners.discard(queue)
                    if not listeners:
                        self._queues.pop(channel, None)
                        with contextlib.suppress(RedisError, OSError):
                            await self._pubsub.unsubscribe(channel)

    @property
    def channels(self) -> int:
        return len(self._queues)

    async def _read(self) -> None:
        failures = 0
        while self._queues:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                # The connection dropped: redis-py resubscribes when it reconnects, but what was
                # published meanwhile is lost to us, so every stream resumes from its log.
                failures += 1
                log.warning("live_fanout_reconnect", failures=failures, exc_info=True)
                self._broadcast_gap("subscription lost")
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            if message is None or message.get("type") != "message":
                continue
            for queue in tuple(self._queues.get(str(message["channel"]), ())):
                try:
                    queue.put_nowait(message["data"])
                except asyncio.QueueFull:
                    STREAMS_CUT.labels("overflow").inc()
                    _cut(queue)

    def _broadcast_gap(self, reason: str) -> None:
        for listeners in self._queues.values():
            for queue in listeners:
                STREAMS_CUT.labels(reason).inc()
                _cut(queue)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


def _cut(queue: asyncio.Queue[object]) -> None:
    """Make room and tell the stream to end: it resumes from the log after reconnecting."""
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()
    queue.put_nowait(_GAP)


class StreamLeases:
    """At most ``limit`` open streams per user, across every process."""

    def __init__(self, redis: Redis, *, limit: int, lease_seconds: float) -> None:
        self._redis = redis
        self._script = redis.register_script(_TAKE_LEASE)
        self._limit = limit
        self._lease_ms = int(lease_seconds * 1000)

    @staticmethod
    def _key(user_id: uuid.UUID) -> str:
        return f"live:leases:{{{user_id}}}"

    async def take(self, user_id: uuid.UUID) -> str | None:
        lease = uuid.uuid4().hex
        now = int(time.time() * 1000)
        taken = await self._script(
            keys=[self._key(user_id)], args=[now, self._lease_ms, self._limit, lease]
        )
        return lease if int(taken) == 1 else None

    async def renew(self, user_id: uuid.UUID, lease: str) -> None:
        now = int(time.time() * 1000)
        await self._redis.zadd(self._key(user_id), {lease: now + self._lease_ms}, xx=True)

    async def give_back(self, user_id: uuid.UUID, lease: str) -> None:
        await self._redis.zrem(self._key(user_id), lease)


def _log_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq)


def frame(event: str, event_id: str, data: str | bytes) -> bytes:
    payload = data.encode() if isinstance(data, str) else data
    return (
        b"id: "
        + event_id.encode()
        + b"\nevent: "
        + event.encode()
        + b"\ndata: "
        + payload
        + b"\n\n"
    )


class LiveStreams:
    """Opens server-sent event streams: a lease, then the missed messages, then live ones."""

    def __init__(
        self,
        redis: Redis,
        *,
        per_user: int,
        keep_alive_seconds: float = 15.0,
        retry_ms: int = 3000,
    ) -> None:
        self._redis = redis
        self.fanout = Fanout(redis)
        self.publisher = Publisher(redis)
        self._leases = StreamLeases(redis, limit=per_user, lease_seconds=keep_alive_seconds * 3)
        self._keep_alive = keep_alive_seconds
        self._retry_ms = retry_ms

    async def open(
        self, user_id: uuid.UUID, topic: Topic, *, last_event_id: str | None
    ) -> AsyncIterator[bytes]:
        """Takes the user's lease now (``TooManyStreams`` if they have too many), and returns the
        stream's frames; closing the stream gives the lease back."""
        lease = await self._leases.take(user_id)
        if lease is None:
            STREAMS_REFUSED.labels(topic.name).inc()
            raise TooManyStreams(5, "Close another stream of yours first")
        resume_from = last_event_id if last_event_id and _EVENT_ID.match(last_event_id) else None
        return self._frames(user_id, lease, topic, resume_from)

    async def _frames(
        self, user_id: uuid.UUID, lease: str, topic: Topic, resume_from: str | None
    ) -> AsyncIterator[bytes]:
        OPEN_STREAMS.labels(topic.name).inc()
        try:
            yield f"retry: {self._retry_ms}\n\n".encode()
            # Listening before reading the log: a message published in between is in both, and
            # is sent once (by id).
            async with self.fanout.listen(topic.channel) as queue:
                last = _log_id(resume_from) if resume_from else (0, 0)
                if resume_from:
                    for entry_id, message in await self._missed(topic, resume_from):
                        last = _log_id(entry_id)
                        yield frame(topic.name, entry_id, message)
                yield b": live\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), self._keep_alive)
                    except TimeoutError:
                        await self._leases.renew(user_id, lease)
                        yield b": keep-alive\n\n"
                        continue
                    if item is _GAP:
                        return
                    entry_id, _, message = str(item).partition(" ")
                    if _log_id(entry_id) <= last:
                        continue
                    last = _log_id(entry_id)
                    yield frame(topic.name, entry_id, message)
        finally:
            OPEN_STREAMS.labels(topic.name).dec()
            with anyio.CancelScope(shield=True), contextlib.suppress(RedisError, OSError):
                await self._leases.give_back(user_id, lease)

    async def _missed(self, topic: Topic, after: str) -> list[tuple[str, str]]:
        entries: Any = await self._redis.xrange(topic.log, min=f"({after}", max="+")
        return [(as_text(entry_id), as_text(fields["m"])) for entry_id, fields in entries or ()]

    async def close(self) -> None:
        await self.fanout.close()
