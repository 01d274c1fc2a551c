"""Read-through cache in Redis, invalidated by generations.

Every entry carries the generation it was loaded under, and a change bumps the generation once it
has committed, so the next read misses. A reader that loaded old rows before the bump stores them
with the old generation, which no reader accepts again: invalidation cannot race with a slow
reader, as a delete followed by a late write of the old value would. A read is one Redis round
trip: the generation and the entry travel in one pipeline.

A generation covers a whole namespace (``scope=None``) or one scope in it (a user id). A scoped
generation key and the scope's entries share the Redis Cluster hash tag ``{scope}``, so they live
on one shard.

Concurrent misses of one entry in one process load it once: the first caller loads, the others
wait for its answer (single flight). Without that, an entry that expires under load (a popular
search, every 30 s) sends every request in flight to the database at once, and the slowest page
of the site is computed dozens of times in a burst.

Entries end after the TTL. A value that changes by itself at a known instant (a point lot
expiring) is stored with that instant and never served past it (``get_or_load_bounded``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from haot.platform.redis import AutoPipeline, Redis, as_text

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class _Bounded(BaseModel):
    """A cached value that stops being true at ``valid_until`` (None: only a change ends it)."""

    value: Any
    valid_until: datetime | None


class GenerationCache:
    """The entries of one namespace, keyed ``namespace:kind[:{scope}][:digest]`` and stored as
    ``generation|payload``: ``{scope}`` is the hash tag of a scoped entry, ``digest`` the first
    32 hex digits of the SHA-256 of ``params`` (a key's length does not grow with a query's)."""

    def __init__(self, redis: Redis, *, namespace: str, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"cache TTL must be positive, got {ttl}")
        self._redis = redis
        self._batched = AutoPipeline(redis)
        self._namespace = namespace
        self._ttl = ttl
        # (entry key, generation) → the load in flight; its generation is part of the key, so a
        # reader of a newer generation never waits for a load of the older one.
        self._loading: dict[tuple[str, str], asyncio.Future[Any]] = {}

    async def _load_once(self, key: str, generation: str, load: Callable[[], Awaitable[T]]) -> T:
        """``load()``, shared by every caller missing (``key``, ``generation``) meanwhile."""
        flight = (key, generation)
        pending = self._loading.get(flight)
        if pending is not None:
            try:
                result: T = await asyncio.shield(pending)
                return result
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The loading caller went away (its client hung up): load for ourselves.
                return await self._load_once(key, generation, load)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loading[flight] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._loading[flight]

    def _generation_key(self, scope: str | None) -> str:
        # The names the lodging and point caches used before they shared this class: instances
        # of the old and the new code agree on the generation during a rolling deploy.
        if scope is None:
            return f"{self._namespace}:cache-gen"
        return f"{self._namespace}:gen:{{{scope}}}"

    def _entry_key(self, kind: str, scope: str | None, params: str | None) -> str:
        parts = [self._namespace, kind]
        if scope is not None:
            parts.append(f"{{{scope}}}")
        if params is not None:
            parts.append(hashlib.sha256(params.encode()).hexdigest()[:32])
        return ":".join(parts)

    async def _read(self, key: str, scope: str | None) -> tuple[str, str | None]:
        """(current generation, the entry's payload if it was stored under that generation)."""
        # Batched with the other reads of this loop turn: a crowd of warm searches shares its
        # round trips (and redis-py's per-command overhead) instead of paying one each.
        generation_raw, stored = await self._batched.execute_many(
            ("GET", self._generation_key(scope)), ("GET", key)
        )
        generation = as_text(generation_raw or "0")
        if stored is None:
            return generation, None
        stored_generation, _, payload = as_text(stored).partition("|")
        return generation, payload if stored_generation == generation else None

    async def _store(self, key: str, generation: str, payload: str, ttl: timedelta) -> None:
        # Batched with the other commands of this loop turn: under a crowd of cold searches each
        # store would otherwise be a socket write of its own (the largest cost left of a miss).
        await self._batched.execute(
            "SET", key, f"{generation}|{payload}", "PX", max(1, ttl // timedelta(milliseconds=1))
        )

    async def read_text(
        self, kind: str, *, scope: str | None = None, params: str | None = None
    ) -> tuple[str | None, str]:
        """The stored text of (``kind``, ``scope``, ``params``) in the current generation (None:
        a miss), and that generation, which a miss may hand to ``get_text_or_load``."""
        generation, payload = await self._read(self._entry_key(kind, scope, params), scope)
        return payload, generation

    async def get_text_or_load(
        self,
        kind: str,
        load: Callable[[], Awaitable[str]],
        *,
        scope: str | None = None,
        params: str | None = None,
        missed_at: str | None = None,
    ) -> str:
        """The stored text (a serialised answer, served as it is), else what ``load`` returns,
        stored for the TTL. ``missed_at``: the generation of a ``read_text`` of the same scope
        that just missed, so the entry is not read again (a load under a generation that has
        moved on since is stored under the old one, which no reader accepts)."""
        key = self._entry_key(kind, scope, params)
        if missed_at is None:
            generation, payload = await self._read(key, scope)
            if payload is not None:
                return payload
        else:
            generation = missed_at

        async def load_and_store() -> str:
            text = await load()
            await self._store(key, generation, text, self._ttl)
            return text

        return await self._load_once(key, generation, load_and_store)

    async def get_or_load(
        self,
        kind: str,
        model: type[M],
        load: Callable[[], Awaitable[M]],
        *,
        scope: str | None = None,
        params: str | None = None,
    ) -> M:
        """The cached ``model`` for (``kind``, ``scope``, ``params``) in the current generation,
        else what ``load`` returns, stored for the TTL."""
        key = self._entry_key(kind, scope, params)
        generation, payload = await self._read(key, scope)
        if payload is not None:
            return model.model_validate_json(payload)

        async def load_and_store() -> M:
            value = await load()
            await self._store(key, generation, value.model_dump_json(), self._ttl)
            return value

        return await self._load_once(key, generation, load_and_store)

    async def get_or_load_bounded(
        self,
        kind: str,
        model: type[M],
        load: Callable[[], Awaitable[tuple[M, datetime | None]]],
        *,
        now: datetime,
        scope: str | None = None,
        params: str | None = None,
    ) -> M:
        """Like ``get_or_load`` for a value that time alone changes: ``load`` returns it with the
        first instant it stops being true (None: never), and a cached value is served only
        before that instant. ``now`` is the caller's clock, the one ``load`` reads the rows at;
        the Redis TTL, on the server's clock, is cut to the bound as well but is not relied on."""
        key = self._entry_key(kind, scope, params)
        generation, payload = await self._read(key, scope)
        if payload is not None:
            entry = _Bounded.model_validate_json(payload)
            if entry.valid_until is None or now < entry.valid_until:
                return model.model_validate(entry.value)
        value, valid_until = await load()
        ttl = self._ttl if valid_until is None else min(self._ttl, valid_until - now)
        if ttl > timedelta(0):
            entry = _Bounded(value=value, valid_until=valid_until)
            await self._store(key, generation, entry.model_dump_json(), ttl)
        return value

    async def invalidate(self, scope: str | None = None) -> None:
        """Bump the generation of ``scope`` (None: of the namespace): later reads miss. Call it
        after the change has committed, or a reader could cache the old rows under the new
        generation."""
        # Batched like the reads: every booking bumps its lodging's generation after commit, and
        # concurrent bookings then share a round trip.
        await self._batched.execute("INCR", self._generation_key(scope))
