"""How the review context follows the reservation: which stays happened, and which completed."""

from __future__ import annotations

from haot.platform.inbox import Consumer, Handler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation.events import (
    ReservationCancelled,
    ReservationCompleted,
    ReservationConfirmed,
    ReservationFacts,
)
from haot.review.service import CANCELLED, COMPLETED, CONFIRMED, ReviewService


def review_consumer(uow: UnitOfWorkFactory, reviews: ReviewService) -> Consumer:
    def recording(status: str) -> Handler[ReservationFacts]:
        async def record(unit: UnitOfWork, event: ReservationFacts) -> None:
            await reviews.record_stay(
                unit,
                status=status,
                reservation_id=event.reservation_id,
                user_id=event.user_id,
                host_id=event.host_id,
                lodging_id=event.lodging_id,
                check_in=event.check_in,
                check_out=event.check_out,
            )

        return record

    return (
        Consumer("review.reservations", uow)
        .on(ReservationConfirmed, recording(CONFIRMED))
        .on(ReservationCompleted, recording(COMPLETED))
        .on(ReservationCancelled, recording(CANCELLED))
    )
