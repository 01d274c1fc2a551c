"""How the lodging context reacts to reservation events: sell or give back held rooms."""

from __future__ import annotations

import uuid

import structlog
from prometheus_client import Counter

from haot.lodging.inventory import RELEASED, SOLD, HoldReleased, Inventory
from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation import events as reservation_events

log = structlog.get_logger(__name__)

FENCED = Counter(
    "haot_lodging_confirm_fenced_total", "Confirmations refused because the hold was released"
)


def lodging_consumer(uow: UnitOfWorkFactory, inventory: Inventory) -> Consumer:
    async def sell(unit: UnitOfWork, event: Event) -> None:
        try:
            await inventory.move(unit, uuid.UUID(event.payload["reservation_id"]), to=SOLD)
        except HoldReleased:
            # Cannot happen while the reservation context is the only one that decides; if it
            # does, it must be seen (alert) rather than retried forever.
            FENCED.inc()
            log.error("confirm_after_release", reservation_id=event.payload["reservation_id"])

    async def give_back(unit: UnitOfWork, event: Event) -> None:
        await inventory.move(unit, uuid.UUID(event.payload["reservation_id"]), to=RELEASED)

    handlers: dict[str, EventHandler] = {reservation_events.RESERVATION_CONFIRMED: sell}
    for kind in reservation_events.GIVEN_UP:
        handlers[kind] = give_back
    return Consumer("lodging.reservations", uow, handlers)
