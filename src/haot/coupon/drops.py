"""First-come-first-served event coupons in Redis: one Lua script admits a claim in one round trip
(rate limit, window, per-user duplicate, stock, claim and stream append, atomically).

Every key of one event carries the event id as hash tag (``cev:{<id>}:...``), so the script's keys
live in one Redis Cluster slot. Redis only admits: the claim stream is drained into the event
transport and persisted (the database is the truth, capped again there); if the event's keys are
missing (Redis restarted or flushed), the script says so and claims pause (503) while the
reconciler rebuilds them from the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from redis.exceptions import NoScriptError

from haot.platform.redis import AutoPipeline, Redis, as_text

_CLAIM = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ev = redis.call('HMGET', KEYS[1], 'state', 'starts', 'ends', 'remaining')
if not ev[1] then return {'missing', 0} end
local hits = redis.call('INCR', KEYS[4])
if hits == 1 then redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[4])) end
if hits > tonumber(ARGV[3]) then return {'rate_limited', redis.call('PTTL', KEYS[4])} end
if ev[1] == 'paused' then return {'paused', 0} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {'duplicate', 0} end
if ev[1] == 'exhausted' then return {'sold_out', 0} end
if ev[1] ~= 'open' then return {'not_open', 0} end
if now < tonumber(ev[2]) or now >= tonumber(ev[3]) then return {'not_open', 0} end
local remaining = tonumber(ev[4])
if remaining == 0 then return {'sold_out', 0} end
if remaining > 0 then
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
  if remaining == 1 then redis.call('HSET', KEYS[1], 'state', 'exhausted') end
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'user', ARGV[1], 'claim', ARGV[2], 'at', now)
return {'accepted', now}
"""

# An edit of a loaded event (state and window) that keeps its stock and users: claims admitted
# but not yet persisted are known only here. A rebuild in progress (paused) stays paused.
_CONFIGURE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'starts', ARGV[2], 'ends', ARGV[3])
if redis.call('HGET', KEYS[1], 'state') ~= 'paused' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
end
return 1
"""


class Admission(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    SOLD_OUT = "sold_out"
    NOT_OPEN = "not_open"
    RATE_LIMITED = "rate_limited"
    PAUSED = "paused"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    admission: Admission
    value: int  # accepted: server time (ms); rate limited: retry after (ms)


def _tag(event_id: uuid.UUID) -> str:
    return f"cev:{{{event_id}}}"


def event_key(event_id: uuid.UUID) -> str:
    return _tag(event_id)


def users_key(event_id: uuid.UUID) -> str:
    return f"{_tag(event_id)}:users"


def stream_key(event_id: uuid.UUID) -> str:
    return f"{_tag(event_id)}:claims"


ACTIVE_EVENTS = "cev:active"  # the events whose streams the pump drains
STREAM_GROUP = "persist"
# Claims read by a pump that then died stay pending under its name (host-pid: a restarted
# process has another); a live pump takes them over once they have been idle this long.
RECLAIM_IDLE_MS = 30_000


@dataclass(frozen=True, slots=True)
class EventState:
    event_id: uuid.UUID
    state: str  # open, exhausted, closed, paused
    starts_at: datetime
    ends_at: datetime
    remaining: int  # -1: unlimited
    users: list[str]


class Drops:
    def __init__(self, redis: Redis, *, claims_per_second: int = 5) -> None:
        self._redis = redis
        self._script = redis.register_script(_CLAIM)
        self._configure = redis.register_script(_CONFIGURE)
        self._claims_per_second = claims_per_second
        # event id → its event, users and stream keys (built once, not on every claim)
        self._event_keys: dict[uuid.UUID, tuple[str, str, str]] = {}
        self._batched = AutoPipeline(redis)

    async def admit(
        self, event_id: uuid.UUID, user_id: uuid.UUID, claim_id: str
    ) -> AdmissionResult:
        user = str(user_id)
        event_keys = self._event_keys.get(event_id)
        if event_keys is None:
            event_keys = (event_key(event_id), users_key(event_id), stream_key(event_id))
            self._event_keys[event_id] = event_keys
        keys = (*event_keys, f"{event_keys[0]}:rl:{user}")
        args = (user, claim_id, self._claims_per_second, 1000)
        try:
            # EVALSHA straight away, batched with the other claims of this loop turn (the hot
            # path); the script object loads it when Redis does not know it (first call,
            # restart, SCRIPT FLUSH) and runs it.
            outcome, value = await self._batched.execute(
                "EVALSHA", self._script.sha, 4, *keys, *args
            )
        except NoScriptError:
            outcome, value = await self._script(keys=keys, args=args)
        return AdmissionResult(Admission(as_text(outcome)), int(value))

    async def load(self, state: EventState) -> None:
        """Write the event's admission state (a rebuild replaces it whole, atomically)."""
        pipe = self._redis.pipeline(transaction=True)
        key = event_key(state.event_id)
        pipe.delete(key, users_key(state.event_id))
        pipe.hset(
            key,
            mapping={
                "state": state.state,
                "starts": int(state.starts_at.timestamp() * 1000),
                "ends": int(state.ends_at.timestamp() * 1000),
                "remaining": state.remaining,
            },
        )
        if state.users:
            pipe.sadd(users_key(state.event_id), *state.users)
        pipe.sadd(ACTIVE_EVENTS, str(state.event_id))
        await pipe.execute()
        await self.ensure_group(state.event_id)

    async def configure(self, state: EventState) -> None:
        """Apply an edit (state, window) without touching stock and users; an event Redis does
        not hold is loaded whole."""
        changed = await self._configure(
            keys=[event_key(state.event_id)],
            args=[
                state.state,
                int(state.starts_at.timestamp() * 1000),
                int(state.ends_at.timestamp() * 1000),
            ],
        )
        if not changed:
            await self.load(state)

    async def ensure_group(self, event_id: uuid.UUID) -> None:
        try:
            await self._redis.xgroup_create(
                stream_key(event_id), STREAM_GROUP, id="0", mkstream=True
            )
        except Exception as exc:  # BUSYGROUP: it exists already
            if "BUSYGROUP" not in str(exc):
                raise

    async def set_state(self, event_id: uuid.UUID, state: str) -> None:
        await self._redis.hset(event_key(event_id), "state", state)

    async def state(self, event_id: uuid.UUID) -> str | None:
        value = await self._redis.hget(event_key(event_id), "state")
        return None if value is None else as_text(value)

    async def is_loaded(self, event_id: uuid.UUID) -> bool:
        return bool(await self._redis.exists(event_key(event_id)))

    async def remaining(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, int | None]:
        """Redis' view of stock per event (None where the event is not loaded)."""
        if not event_ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.hget(event_key(event_id), "remaining")
        values = await pipe.execute()
        return {
            event_id: (int(value) if value is not None else None)
            for event_id, value in zip(event_ids, values, strict=True)
        }

    async def stock_and_users(self, event_id: uuid.UUID) -> tuple[int, int] | None:
        """Remaining stock and the number of users admitted, read in one atomic step (None where
        the event is not loaded)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hget(event_key(event_id), "remaining")
        pipe.scard(users_key(event_id))
        remaining, users = await pipe.execute()
        if remaining is None:
            return None
        return int(remaining), int(users)

    async def has_claimed(self, event_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return bool(await self._redis.sismember(users_key(event_id), str(user_id)))

    async def active_events(self) -> list[uuid.UUID]:
        members = await self._redis.smembers(ACTIVE_EVENTS)
        return [uuid.UUID(as_text(m)) for m in members]

    async def forget(self, event_id: uuid.UUID) -> None:
        await self._redis.srem(ACTIVE_EVENTS, str(event_id))

    async def read_claims(
        self, event_id: uuid.UUID, consumer: str, *, count: int, recover: bool = True
    ) -> list[tuple[str, dict[str, str]]]:
        """Claims not yet persisted. With ``recover``, first this consumer's pending (delivered,
        never acked: a crash mid-batch), then those another consumer left pending for
        ``RECLAIM_IDLE_MS`` (it died and came back under another name, or never); then, or
        without ``recover``, new ones."""
        stream = stream_key(event_id)
        entries: Any = []
        if recover:
            pending: Any = await self._redis.xreadgroup(
                STREAM_GROUP, consumer, {stream: "0"}, count=count
            )
            entries = pending[0][1] if pending else []
            if not entries:
                orphans: Any = await self._redis.xautoclaim(
                    stream, STREAM_GROUP, consumer, RECLAIM_IDLE_MS, start_id="0-0", count=count
                )
                entries = [entry for entry in orphans[1] if entry and entry[1]] if orphans else []
        if not entries:
            fresh: Any = await self._redis.xreadgroup(
                STREAM_GROUP, consumer, {stream: ">"}, count=count
            )
            entries = fresh[0][1] if fresh else []
        out: list[tuple[str, dict[str, str]]] = []
        for entry_id, fields in entries:
            out.append((as_text(entry_id), {as_text(k): as_text(v) for k, v in fields.items()}))
        return out

    async def ack(self, event_id: uuid.UUID, entry_ids: list[str]) -> None:
        if entry_ids:
            stream = stream_key(event_id)
            pipe = self._redis.pipeline(transaction=False)
            pipe.xack(stream, STREAM_GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            await pipe.execute()

    async def backlog(self, event_id: uuid.UUID) -> int:
        """Claims admitted but not yet persisted (stream length; acked entries are deleted)."""
        return int(await self._redis.xlen(stream_key(event_id)))
