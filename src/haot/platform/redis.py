"""Redis clients: a real server (``HAOT_REDIS_URL``) or, when empty, fakeredis in-process with Lua,
so the same scripts run in the embedded default as in production."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from haot.platform.settings import Settings

Redis = aioredis.Redis


def create_redis(settings: Settings) -> Redis:
    if settings.embedded_redis:
        import fakeredis

        client: Any = fakeredis.FakeAsyncRedis(decode_responses=True)
        return client  # type: ignore[no-any-return]
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        max_connections=256,
    )
