"""How the payment context reacts to reservation events: void unpaid payments, refund
cancellations and stray payments (each once, keyed)."""

from __future__ import annotations

import uuid

from haot.payment.service import PaymentService
from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation import events as reservation_events


def payment_consumer(uow: UnitOfWorkFactory, payments: PaymentService) -> Consumer:
    async def void(unit: UnitOfWork, event: Event) -> None:
        await payments.void(
            unit, uuid.UUID(event.payload["reservation_id"]), f"reservation {event.type}"
        )

    async def refund_cancellation(unit: UnitOfWork, event: Event) -> None:
        reservation_id = uuid.UUID(event.payload["reservation_id"])
        await payments.refund_reservation(
            unit,
            reservation_id,
            amount=int(event.payload.get("refund_amount") or 0),
            key=f"cancel:{reservation_id}",
            reason="reservation cancelled",
        )

    async def refund_stray(unit: UnitOfWork, event: Event) -> None:
        await payments.refund_payment_in_full(
            unit,
            event.payload["rejected_payment_id"],
            key=f"rejected:{event.payload['rejected_payment_id']}",
            reason=str(event.payload.get("reason", "payment rejected by reservation")),
        )

    handlers: dict[str, EventHandler] = {
        reservation_events.RESERVATION_EXPIRED: void,
        reservation_events.RESERVATION_FAILED: void,
        reservation_events.RESERVATION_CANCELLED: refund_cancellation,
        reservation_events.PAYMENT_REJECTED: refund_stray,
    }
    return Consumer("payment.reservations", uow, handlers)
