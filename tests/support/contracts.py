"""Event contracts of the platform's own tests. Each carries a ``token`` that is also its event's
id (``Event.of(..., id=token)``), so that handlers, which receive only the decoded contract, can
record which event they applied."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from haot.platform.events import Event, EventBody


class _Tokened(EventBody):
    aggregate: str
    token: uuid.UUID

    def aggregate_id(self) -> str:
        return self.aggregate


class Thing(_Tokened):
    TYPE: ClassVar[str] = "lodging.test_thing_happened"
    seq: int
    marker: str | None = None


class CrashThing(_Tokened):
    TYPE: ClassVar[str] = "crashtest.thing_happened"
    seq: int


class Batched(_Tokened):
    TYPE: ClassVar[str] = "lodging.test_batched"
    label: str


class Single(_Tokened):
    TYPE: ClassVar[str] = "lodging.test_single"
    label: str


def envelope(contract: type[_Tokened], aggregate_id: str, **fields: Any) -> Event:
    token = uuid.uuid4()
    return Event.of(contract(aggregate=aggregate_id, token=token, **fields), id=token)
