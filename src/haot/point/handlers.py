"""How the point context reacts to reservation events."""

from __future__ import annotations

import uuid

from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.point.service import PointService
from haot.reservation import events as reservation_events


def point_consumer(uow: UnitOfWorkFactory, points: PointService) -> Consumer:
    def reservation_of(event: Event) -> uuid.UUID:
        return uuid.UUID(event.payload["reservation_id"])

    async def spend(unit: UnitOfWork, event: Event) -> None:
        await points.spend(unit, reservation_of(event))

    async def release(unit: UnitOfWork, event: Event) -> None:
        await points.release(unit, reservation_of(event))

    async def cancelled(unit: UnitOfWork, event: Event) -> None:
        if event.payload.get("was_confirmed"):
            await points.refund(unit, reservation_of(event), int(event.payload["points_refund"]))
        else:
            await points.release(unit, reservation_of(event))

    async def earn(unit: UnitOfWork, event: Event) -> None:
        await points.earn(
            unit,
            user_id=uuid.UUID(event.payload["user_id"]),
            reservation_id=reservation_of(event),
            paid_amount=int(event.payload["amount"]),
        )

    handlers: dict[str, EventHandler] = {
        reservation_events.RESERVATION_CONFIRMED: spend,
        reservation_events.RESERVATION_EXPIRED: release,
        reservation_events.RESERVATION_FAILED: release,
        reservation_events.RESERVATION_CANCELLED: cancelled,
        reservation_events.RESERVATION_COMPLETED: earn,
    }
    return Consumer("point.reservations", uow, handlers)
