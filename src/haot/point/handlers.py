"""How the point context reacts to reservation events."""

from __future__ import annotations

from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.point.service import PointService
from haot.reservation.events import (
    ReservationCancelled,
    ReservationCompleted,
    ReservationConfirmed,
    ReservationExpired,
    ReservationFacts,
    ReservationFailed,
)


def point_consumer(uow: UnitOfWorkFactory, points: PointService) -> Consumer:
    async def spend(unit: UnitOfWork, event: ReservationConfirmed) -> None:
        await points.spend(unit, event.reservation_id)

    async def release(unit: UnitOfWork, event: ReservationFacts) -> None:
        await points.release(unit, event.reservation_id)

    async def cancelled(unit: UnitOfWork, event: ReservationCancelled) -> None:
        if event.was_confirmed:
            await points.refund(unit, event.reservation_id, event.points_refund)
        else:
            await points.release(unit, event.reservation_id)

    async def earn(unit: UnitOfWork, event: ReservationCompleted) -> None:
        await points.earn(
            unit,
            user_id=event.user_id,
            reservation_id=event.reservation_id,
            paid_amount=event.amount,
        )

    return (
        Consumer("point.reservations", uow)
        .on(ReservationConfirmed, spend)
        .on(ReservationExpired, release)
        .on(ReservationFailed, release)
        .on(ReservationCancelled, cancelled)
        .on(ReservationCompleted, earn)
    )
