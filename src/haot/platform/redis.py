"""Redis clients: a real server (``HAOT_REDIS_URL``) or, when empty, fakeredis in-process with Lua,
so the same scripts run in the embedded default as in production.

Both use a *blocking* pool: when every connection is busy (a burst of coupon claims), a command
waits up to ``POOL_TIMEOUT_SECONDS`` for a free one instead of failing at once with
``MaxConnectionsError``, which redis-py's default pool raises past its limit.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import redis.asyncio as aioredis

from haot.platform.settings import Settings

Redis = aioredis.Redis

MAX_CONNECTIONS = 256
POOL_TIMEOUT_SECONDS = 5.0


EMBEDDED_MISSING = (
    "HAOT_REDIS_URL is empty (the embedded Redis), but fakeredis is not installed: "
    "pip install 'haot[embedded]' (make run does), or set HAOT_REDIS_URL"
)


def embedded_redis_installed() -> bool:
    return importlib.util.find_spec("fakeredis") is not None


def create_redis(settings: Settings) -> Redis:
    if settings.embedded_redis:
        if not embedded_redis_installed():
            raise RuntimeError(EMBEDDED_MISSING)
        import fakeredis

        client: Any = fakeredis.FakeAsyncRedis(
            decode_responses=True,
            connection_pool_class=aioredis.BlockingConnectionPool,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_SECONDS,
        )
        return client  # type: ignore[no-any-return]
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_SECONDS,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


def as_text(value: bytes | str | int) -> str:
    """A Redis reply as text. Clients here decode responses, but the client's types admit bytes
    (and replies inside Lua results or streams may be either), so every reader goes through this
    one conversion rather than repeating it."""
    return value.decode() if isinstance(value, bytes) else str(value)


class AutoPipeline:
    """Commands that concurrent tasks issue in the same turn of the event loop leave as one
    pipeline: one socket write and one read for all of them instead of one each (on these
    machines a socket write is the single largest cost of a coupon claim). Each caller awaits its
    own reply; an error reply reaches only its caller; a failed round trip reaches every caller
    of that batch. Not a transaction: the commands are independent, as if sent one by one.

    A batch goes out once the tasks that are ready now have run (``call_soon``), so a lone
    command waits one loop iteration and nothing more."""

    def __init__(self, redis: Redis, *, max_batch: int = 512) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *command: Any) -> Any:
        return await self._enqueue(command)

    async def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several commands of one caller, in the same batch; their replies in order (the first
        error reply raises)."""
        replies = [self._enqueue(command) for command in commands]
        try:
            return [await reply for reply in replies]
        finally:
            for reply in replies:  # an error reply we did not get to is still ours: retrieve it
                if reply.done() and not reply.cancelled():
                    reply.exception()

    def _enqueue(self, command: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queue.append((command, reply))
        if len(self._queue) >= self._max_batch:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return reply

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue:
            return
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for command, _ in batch:
                pipe.execute_command(*command)
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(exc)
            return
        except BaseException:  # cancelled (shutting down): so are its callers
            for _, reply in batch:
                reply.cancel()
            raise
        for (_, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)
