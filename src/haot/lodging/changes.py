"""The feed of lodging changes that the offer index of every process follows.

A Redis stream: each entry names a lodging whose attributes, room types or calendar changed, or a
room type whose inventory moved (a hold, a sale, a release). Writers append after their commit and
before they bump the cache generation, so a reader that sees the new generation and then reads the
feed always finds the change (``offers.OfferIndex.catch_up``). The stream is capped; a reader that
fell behind the cap reloads everything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from haot.platform.redis import AutoPipeline, Redis, as_text

STREAM = "lodging:changes"
CAP = 100_000
LODGING, ROOM_TYPE = "l", "r"


@dataclass
class Changes:
    """What a reader must reload: ``complete`` is False when it fell behind the stream's cap."""

    last_id: str
    lodgings: set[uuid.UUID] = field(default_factory=set)
    room_types: set[uuid.UUID] = field(default_factory=set)
    complete: bool = True


class ChangeFeed:
    def __init__(self, redis: Redis, *, batch: int = 5_000) -> None:
        self._redis = redis
        self._batch = batch
        # Every booking appends one entry after its commit: concurrent bookings share a round trip.
        self._appends = AutoPipeline(redis)

    async def lodging_changed(self, lodging_id: uuid.UUID) -> None:
        await self._append(LODGING, lodging_id)

    async def room_type_changed(self, room_type_id: uuid.UUID) -> None:
        await self._append(ROOM_TYPE, room_type_id)

    async def _append(self, kind: str, entity_id: uuid.UUID) -> None:
        await self._appends.execute(
            "XADD", STREAM, "MAXLEN", "~", CAP, "*", "k", kind, "id", str(entity_id)
        )

    async def tail(self) -> str:
        """The id of the newest entry ("0-0" when empty): where a fresh reader starts."""
        newest = await self._redis.xrevrange(STREAM, count=1)
        return as_text(newest[0][0]) if newest and newest[0][0] is not None else "0-0"

    async def since(self, last_id: str) -> Changes:
        """The changes after ``last_id``, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(STREAM, min=f"({last_id}", count=self._batch)
        pipe.xrange(STREAM, count=1)
        entries, oldest = await pipe.execute()
        changes = Changes(last_id=last_id)
        if oldest and _before(last_id, as_text(oldest[0][0])) and last_id != "0-0":
            changes.complete = False  # last_id was trimmed away: so may be what followed it
        if len(entries) >= self._batch:
            changes.complete = False  # too many to apply one by one: reload everything
        for entry_id, values in entries:
            decoded = {as_text(k): as_text(v) for k, v in values.items()}
            target = changes.lodgings if decoded.get("k") == LODGING else changes.room_types
            target.add(uuid.UUID(decoded["id"]))
            changes.last_id = as_text(entry_id)
        return changes


def _before(first: str, second: str) -> bool:
    """Whether stream id ``first`` is older than ``second``."""
    a_ms, _, a_seq = first.partition("-")
    b_ms, _, b_seq = second.partition("-")
    return (int(a_ms), int(a_seq or 0)) < (int(b_ms), int(b_seq or 0))
