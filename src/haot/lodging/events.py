"""Events the lodging context emits (topic ``haot.lodging``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar

from haot.platform.events import EventBody


class _LodgingEvent(EventBody):
    lodging_id: uuid.UUID

    def aggregate_id(self) -> str:
        return str(self.lodging_id)


class _HostedLodgingEvent(_LodgingEvent):
    host_id: uuid.UUID


class LodgingCreated(_HostedLodgingEvent):
    TYPE: ClassVar[str] = "lodging.lodging_created"


class LodgingUpdated(_HostedLodgingEvent):
    TYPE: ClassVar[str] = "lodging.lodging_updated"


class LodgingDeleted(_HostedLodgingEvent):
    TYPE: ClassVar[str] = "lodging.lodging_deleted"


class RoomTypeChanged(_LodgingEvent):
    TYPE: ClassVar[str] = "lodging.room_type_changed"
    room_type_id: uuid.UUID
    deleted: bool = False


class CalendarChanged(_LodgingEvent):
    """Nights from ``start`` to ``end`` (inclusive) of a room type were opened, repriced or
    closed."""

    TYPE: ClassVar[str] = "lodging.calendar_changed"
    room_type_id: uuid.UUID
    start: date
    end: date
