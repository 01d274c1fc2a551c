"""How the payment context reacts to reservation events: void unpaid payments, refund
cancellations and stray payments (each once, keyed)."""

from __future__ import annotations

from haot.payment.service import PaymentService
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation.events import (
    PaymentRejected,
    ReservationCancelled,
    ReservationExpired,
    ReservationFacts,
    ReservationFailed,
)


def payment_consumer(uow: UnitOfWorkFactory, payments: PaymentService) -> Consumer:
    async def void(unit: UnitOfWork, event: ReservationFacts) -> None:
        await payments.void(unit, event.reservation_id, f"reservation {event.TYPE}")

    async def refund_cancellation(unit: UnitOfWork, event: ReservationCancelled) -> None:
        await payments.refund_reservation(
            unit,
            event.reservation_id,
            amount=event.refund_amount,
            key=f"cancel:{event.reservation_id}",
            reason="reservation cancelled",
        )

    async def refund_stray(unit: UnitOfWork, event: PaymentRejected) -> None:
        await payments.refund_payment_in_full(
            unit,
            event.rejected_payment_id,
            key=f"rejected:{event.rejected_payment_id}",
            reason=event.reason,
        )

    return (
        Consumer("payment.reservations", uow)
        .on(ReservationExpired, void)
        .on(ReservationFailed, void)
        .on(ReservationCancelled, refund_cancellation)
        .on(PaymentRejected, refund_stray)
    )
