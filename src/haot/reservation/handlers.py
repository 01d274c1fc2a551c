"""How the reservation context reacts to payment events (applied once each, via the inbox)."""

from __future__ import annotations

import structlog

from haot.payment.events import PaymentDiscrepant, PaymentFailed, PaymentPaid
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation import events
from haot.reservation.domain import ReservationStatus
from haot.reservation.repository import ReservationRepository
from haot.reservation.service import move, reservation_facts

log = structlog.get_logger(__name__)


async def on_payment_paid(uow: UnitOfWork, event: PaymentPaid) -> None:
    """Confirm if, and only if, the reservation is still PENDING for this very payment and amount.
    Anything else (expired, cancelled, failed, another payment) is a late or stray payment: ask
    the payment context to refund it."""
    reservation = await ReservationRepository(uow.session).get(
        event.reservation_id, for_update=True
    )
    if reservation is None:
        return
    same_payment = reservation.payment_id == event.payment_id
    if (
        reservation.status == ReservationStatus.PENDING.value
        and same_payment
        and reservation.amount == event.amount
    ):
        move(uow, reservation, ReservationStatus.CONFIRMED)
        return
    if same_payment and reservation.status in (
        ReservationStatus.CONFIRMED.value,
        ReservationStatus.COMPLETED.value,
    ):
        return
    log.warning(
        "payment_rejected",
        reservation_id=str(reservation.id),
        status=reservation.status,
        payment_id=event.payment_id,
    )
    uow.emit(
        events.PaymentRejected(
            **reservation_facts(reservation),
            rejected_payment_id=event.payment_id,
            reason=f"reservation is {reservation.status}",
        )
    )


async def on_payment_unusable(uow: UnitOfWork, event: PaymentFailed | PaymentDiscrepant) -> None:
    """Declined or discrepant: the reservation fails and every step is given back."""
    reservation = await ReservationRepository(uow.session).get(
        event.reservation_id, for_update=True
    )
    if reservation is None or reservation.status != ReservationStatus.PENDING.value:
        return
    if reservation.payment_id != event.payment_id:
        return
    reservation.failure_reason = (
        "payment declined"
        if isinstance(event, PaymentFailed)
        else "payment did not match the reservation amount"
    )
    move(uow, reservation, ReservationStatus.FAILED)


def reservation_consumer(uow: UnitOfWorkFactory) -> Consumer:
    return (
        Consumer("reservation.payments", uow)
        .on(PaymentPaid, on_payment_paid)
        .on(PaymentFailed, on_payment_unusable)
        .on(PaymentDiscrepant, on_payment_unusable)
    )
