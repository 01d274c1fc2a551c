"""Host pages: my lodgings, their room types and calendars, reservations of my lodgings (SPEC:
``/host/lodgings``, ``/host/lodgings/{id}``, ``/host/room-types/{id}/calendar``). Every rule is the
API's; the page shows its answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
