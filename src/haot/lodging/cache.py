"""Read-through cache for public lodging reads (search pages, details, calendars).

One generation for the whole context (``platform.cache.GenerationCache``): every host change bumps
it after commit, so the next read misses. Inventory moved by bookings does not bump the generation
(that would empty the cache on every booking); such staleness lasts at most the TTL and the hold
itself is always checked against the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel

from haot.lodging.changes import ChangeFeed
from haot.platform.cache import GenerationCache
from haot.platform.redis import Redis

M = TypeVar("M", bound=BaseModel)


class LodgingCache:
    """The lodging namespace of a ``GenerationCache``, in the shape the service and search call."""

    def __init__(
        self, redis: Redis, *, ttl_seconds: int = 30, feed: ChangeFeed | None = None
    ) -> None:
        self._cache = GenerationCache(
            redis, namespace="lodging", ttl=timedelta(seconds=ttl_seconds)
        )
        self._feed = feed

    async def get_or_load(
        self, kind: str, params: str, model: type[M], load: Callable[[], Awaitable[M]]
    ) -> M:
        return await self._cache.get_or_load(kind, model, load, params=params)

    async def get_text_or_load(
        self, kind: str, load: Callable[[], Awaitable[str]], *, params: str
    ) -> str:
        return await self._cache.get_text_or_load(kind, load, params=params)

    async def read_text(self, kind: str, *, params: str) -> str | None:
        return await self._cache.read_text(kind, params=params)

    async def invalidate(self, lodging_id: uuid.UUID | None = None) -> None:
        """After a host's change to ``lodging_id`` has committed: the offer indexes learn of it
        first (the change feed), then the generation moves, so a reader that sees the new
        generation finds the change in the feed too."""
        if lodging_id is not None and self._feed is not None:
            await self._feed.lodging_changed(lodging_id)
        await self._cache.invalidate()
