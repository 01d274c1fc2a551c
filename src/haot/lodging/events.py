"""Events the lodging context emits (topic ``haot.lodging``)."""

from __future__ import annotations

from datetime import date

from haot.platform.events import Event

LODGING_CREATED = "lodging.lodging_created"
LODGING_UPDATED = "lodging.lodging_updated"
LODGING_DELETED = "lodging.lodging_deleted"
ROOM_TYPE_CHANGED = "lodging.room_type_changed"
CALENDAR_CHANGED = "lodging.calendar_changed"


def lodging_event(kind: str, lodging_id: str, host_id: str) -> Event:
    return Event(
        type=kind, aggregate_id=lodging_id, payload={"lodging_id": lodging_id, "host_id": host_id}
    )


def room_type_changed(lodging_id: str, room_type_id: str, *, deleted: bool = False) -> Event:
    return Event(
        type=ROOM_TYPE_CHANGED,
        aggregate_id=lodging_id,
        payload={"lodging_id": lodging_id, "room_type_id": room_type_id, "deleted": deleted},
    )


def calendar_changed(lodging_id: str, room_type_id: str, start: date, end: date) -> Event:
    return Event(
        type=CALENDAR_CHANGED,
        aggregate_id=lodging_id,
        payload={
            "lodging_id": lodging_id,
            "room_type_id": room_type_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
