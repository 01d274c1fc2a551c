"""Host pages: my lodgings, their room types and calendars, reservations of my lodgings (SPEC:
``/host/lodgings``, ``/host/lodgings/{id}``, ``/host/room-types/{id}/calendar``). Every rule is the
API's; the page shows its answer. ``router`` holds them all, in the order they are matched."""

from __future__ import annotations

from fastapi import APIRouter

from haot.web.host import calendar, lodgings, reservations, reviews, room_types

router = APIRouter(include_in_schema=False)
# No two of these share a path: each keeps its own routes in the order they must be matched
# (lodgings: /host/lodgings/new before /host/lodgings/{lodging_id}).
for module in (lodgings, room_types, calendar, reservations, reviews):
    router.include_router(module.router)
