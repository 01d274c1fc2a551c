"""How the reservation context reacts to payment events (applied once each, via the inbox)."""

from __future__ import annotations

import uuid

import structlog

from haot.payment import events as payment_events
from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation import events
from haot.reservation.domain import ReservationStatus
from haot.reservation.repository import ReservationRepository
from haot.reservation.service import move, reservation_event

log = structlog.get_logger(__name__)


async def on_payment_paid(uow: UnitOfWork, event: Event) -> None:
    """Confirm if, and only if, the reservation is still PENDING for this very payment and amount.
    Anything else (expired, cancelled, failed, another payment) is a late or stray payment: ask
    the payment context to refund it."""
    payload = event.payload
    reservation = await ReservationRepository(uow.session).get(
        uuid.UUID(payload["reservation_id"]), for_update=True
    )
    if reservation is None:
        return
    same_payment = reservation.payment_id == payload["payment_id"]
    if (
        reservation.status == ReservationStatus.PENDING.value
        and same_payment
        and reservation.amount == payload["amount"]
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
        payment_id=payload["payment_id"],
    )
    uow.emit(
        reservation_event(
            events.PAYMENT_REJECTED,
            reservation,
            rejected_payment_id=payload["payment_id"],
            reason=f"reservation is {reservation.status}",
        )
    )


async def on_payment_unusable(uow: UnitOfWork, event: Event) -> None:
    """Declined or discrepant: the reservation fails and every step is given back."""
    reservation = await ReservationRepository(uow.session).get(
        uuid.UUID(event.payload["reservation_id"]), for_update=True
    )
    if reservation is None or reservation.status != ReservationStatus.PENDING.value:
        return
    if reservation.payment_id != event.payload["payment_id"]:
        return
    reservation.failure_reason = (
        "payment declined"
        if event.type == payment_events.PAYMENT_FAILED
        else "payment did not match the reservation amount"
    )
    move(uow, reservation, ReservationStatus.FAILED)


def reservation_consumer(uow: UnitOfWorkFactory) -> Consumer:
    handlers: dict[str, EventHandler] = {
        payment_events.PAYMENT_PAID: on_payment_paid,
        payment_events.PAYMENT_FAILED: on_payment_unusable,
        payment_events.PAYMENT_DISCREPANT: on_payment_unusable,
    }
    return Consumer("reservation.payments", uow, handlers)
