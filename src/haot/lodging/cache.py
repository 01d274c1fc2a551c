"""Read-through cache for public lodging reads (search pages, details, calendars).

Keys carry a generation number; every host change bumps it after commit, so the next read misses.
A reader that loaded old rows before the bump stores them under the old generation, which nobody
reads again: invalidation cannot race with a slow reader. Inventory moved by bookings does not bump
the generation (that would empty the cache on every booking); such staleness lasts at most the TTL
and the hold itself is always checked against the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel

from haot.platform.redis import Redis, as_text

M = TypeVar("M", bound=BaseModel)

_GENERATION = "lodging:cache-gen"


class LodgingCache:
    def __init__(self, redis: Redis, *, ttl_seconds: int = 30) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get_or_load(
        self, kind: str, params: str, model: type[M], load: Callable[[], Awaitable[M]]
    ) -> M:
        generation = as_text(await self._redis.get(_GENERATION) or "0")
        digest = hashlib.sha256(params.encode()).hexdigest()[:32]
        key = f"lodging:{kind}:{generation}:{digest}"
        cached = await self._redis.get(key)
        if cached is not None:
            return model.model_validate_json(cached)
        value = await load()
        await self._redis.set(key, value.model_dump_json(), ex=self._ttl)
        return value

    async def invalidate(self) -> None:
        await self._redis.incr(_GENERATION)
