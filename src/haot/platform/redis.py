"""Redis clients: a real server (``HAOT_REDIS_URL``) or, when empty, fakeredis in-process with Lua,
so the same scripts run in the embedded default as in production.

Both use a *blocking* pool: when every connection is busy (a burst of coupon claims), a command
waits up to ``POOL_TIMEOUT_SECONDS`` for a free one instead of failing at once with
``MaxConnectionsError``, which redis-py's default pool raises past its limit.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from haot.platform.settings import Settings

Redis = aioredis.Redis

MAX_CONNECTIONS = 256
POOL_TIMEOUT_SECONDS = 5.0


def create_redis(settings: Settings) -> Redis:
    if settings.embedded_redis:
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
