"""Read-through cache for public lodging reads (search pages, details, calendars).

One generation for the whole context (``platform.cache.GenerationCache``): every host change bumps
it after commit, so the next read misses. Inventory moved by bookings does not bump it (that would
empty every search page on every booking): a search page may lag a booking by up to the TTL, and the
hold itself is always checked against the database.

A lodging's month calendars are the exception. They are what a guest picks nights from, and a guest
who has just cancelled (or lost a race) expects the night to show as it is, so they live under a
generation of their own lodging (``scope``), which every host change to the lodging and every
inventory move of its rooms bumps after commit. One booking empties one lodging's calendars, nothing
else.
"""

from __future__ import annotations

import asyncio
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

    async def get_or_load_of_lodging(
        self,
        kind: str,
        lodging_id: uuid.UUID,
        params: str,
        model: type[M],
        load: Callable[[], Awaitable[M]],
    ) -> M:
        """Like ``get_or_load`` for an answer that also changes when the lodging's inventory
        moves (``inventory_moved``), not only when its host changes it."""
        return await self._cache.get_or_load(
            kind, model, load, scope=str(lodging_id), params=params
        )

    async def get_text_or_load(
        self,
        kind: str,
        load: Callable[[], Awaitable[str]],
        *,
        params: str,
        missed_at: str | None = None,
    ) -> str:
        return await self._cache.get_text_or_load(kind, load, params=params, missed_at=missed_at)

    async def read_text(self, kind: str, *, params: str) -> tuple[str | None, str]:
        return await self._cache.read_text(kind, params=params)

    async def invalidate(self, lodging_id: uuid.UUID) -> None:
        """After a host's change to ``lodging_id`` has committed: the offer indexes learn of it
        first (the change feed), then the generations move, so a reader that sees a new
        generation finds the change in the feed too."""
        if self._feed is not None:
            await self._feed.lodging_changed(lodging_id)
        await asyncio.gather(
            self._cache.invalidate(), self._cache.invalidate(scope=str(lodging_id))
        )

    async def inventory_moved(self, lodging_id: uuid.UUID, room_type_id: uuid.UUID) -> None:
        """After a hold, sale or release of ``room_type_id`` has committed: the offer indexes
        learn of it (the change feed) and the lodging's calendars miss from now on. The two are
        independent (a calendar is read from the database), so they share one round trip's
        wait."""
        moves = [self._cache.invalidate(scope=str(lodging_id))]
        if self._feed is not None:
            moves.append(self._feed.room_type_changed(room_type_id))
        await asyncio.gather(*moves)
