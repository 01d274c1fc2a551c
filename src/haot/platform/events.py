"""Domain events as they travel: recorded in a unit of work, stored in the outbox, sent by a
transport.

Topics are per context (``haot.identity``) so that all events of one aggregate share a topic and,
keyed by aggregate id, a partition: per-aggregate order holds on Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from haot.platform.clock import utcnow
from haot.platform.ids import new_id


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a context, named in the past tense
    (``identity.user_registered``)."""

    type: str
    aggregate_id: str
    payload: dict[str, Any]
    id: uuid.UUID = field(default_factory=new_id)
    occurred_at: datetime = field(default_factory=utcnow)

    @property
    def context(self) -> str:
        return self.type.split(".", 1)[0]


def topic_for(context: str, prefix: str = "haot.") -> str:
    return f"{prefix}{context}"


def encode_event(event: Event) -> bytes:
    return orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "aggregate_id": event.aggregate_id,
            "occurred_at": event.occurred_at.isoformat(),
            "payload": event.payload,
        }
    )


def decode_event(raw: bytes) -> Event:
    data = orjson.loads(raw)
    return Event(
        id=uuid.UUID(data["id"]),
        type=data["type"],
        aggregate_id=data["aggregate_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        payload=data["payload"],
    )
