"""Domain events as they travel: declared as versioned contracts, recorded in a unit of work,
stored in the outbox, sent by a transport, decoded back into their contract by each consumer.

Topics are per context (``haot.identity``) so that all events of one aggregate share a topic and,
keyed by aggregate id, a partition: per-aggregate order holds on Kafka.

A contract (``EventBody``) is a frozen pydantic model with a ``TYPE`` and a ``VERSION``. Its
fields are the payload on the wire. Readers are tolerant of fields they do not know (a producer
may add an optional field without a new version); removing or renaming a field, or changing its
meaning, is a new ``VERSION``, and the contract then says how to read the older one
(``upgrade``). A payload that does not decode into its contract is a poison event
(``PoisonEvent``): the consumer parks it instead of applying a default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from haot.platform.clock import utcnow
from haot.platform.ids import new_id
from haot.platform.observability import current_traceparent


class PoisonEvent(Exception):
    """An event that can never be applied as it is: its payload does not decode into the contract
    of its type and version."""


class EventBody(BaseModel):
    """The contract of one event type at one version (``identity.user_registered`` v1)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            known = CONTRACTS.get(cls.TYPE)
            if known is not None and _where(known) != _where(cls):  # a module reload is fine
                raise TypeError(f"two contracts for {cls.TYPE}: {_where(known)}, {_where(cls)}")
            CONTRACTS[cls.TYPE] = cls

    def aggregate_id(self) -> str:
        """The key events of one aggregate share (their order holds per key)."""
        raise NotImplementedError

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Turn the payload of an older ``version`` into this version's. There is none yet: every
        contract is at version 1; a contract that moves to version 2 overrides this."""
        raise PoisonEvent(f"{cls.TYPE} v{version} cannot be read as v{cls.VERSION}")

    @classmethod
    def decode(cls, event: Event) -> Self:
        if event.type != cls.TYPE:
            raise PoisonEvent(f"{event.type} is not {cls.TYPE}")
        payload = event.payload
        if event.version > cls.VERSION:
            raise PoisonEvent(
                f"{cls.TYPE} v{event.version} is newer than this reader (v{cls.VERSION})"
            )
        if event.version < cls.VERSION:
            payload = cls.upgrade(event.version, payload)
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise PoisonEvent(f"{cls.TYPE} v{event.version}: " + "; ".join(_problems(exc))) from exc


# Every contract, by type: filled as the contexts' events modules are imported.
CONTRACTS: dict[str, type[EventBody]] = {}


def _where(contract: type[EventBody]) -> str:
    return f"{contract.__module__}.{contract.__qualname__}"


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()]


@dataclass(frozen=True, slots=True)
class Event:
    """The envelope an event travels in: its contract's type and version, the aggregate it belongs
    to, and the payload as JSON-ready data.

    ``trace_parent`` is the W3C trace context of whoever made the envelope (the request or the
    consumer being served, taken when it is made, unless given): it travels with the event
    (outbox column, Kafka record header), so the consumer continues the trace. It is not part of
    the payload or of the contract."""

    type: str
    aggregate_id: str
    payload: dict[str, Any]
    id: uuid.UUID = field(default_factory=new_id)
    occurred_at: datetime = field(default_factory=utcnow)
    version: int = 1
    trace_parent: str | None = field(default_factory=current_traceparent, compare=False)

    @classmethod
    def of(cls, body: EventBody, *, id: uuid.UUID | None = None) -> Event:
        return cls(
            type=body.TYPE,
            version=body.VERSION,
            aggregate_id=body.aggregate_id(),
            payload=body.model_dump(mode="json"),
            id=id or new_id(),
        )

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
            "version": event.version,
            "aggregate_id": event.aggregate_id,
            "occurred_at": event.occurred_at.isoformat(),
            "payload": event.payload,
        }
    )


def decode_event(raw: bytes, *, trace_parent: str | None = None) -> Event:
    """The envelope ``encode_event`` wrote; ``trace_parent`` travels beside it (a header)."""
    data = orjson.loads(raw)
    return Event(
        id=uuid.UUID(data["id"]),
        type=data["type"],
        # Envelopes written before versions existed carry none: they are version 1.
        version=int(data.get("version", 1)),
        aggregate_id=data["aggregate_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        payload=data["payload"],
        trace_parent=trace_parent,
    )
