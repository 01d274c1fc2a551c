"""Events the reservation context emits (topic ``haot.reservation``). Each carries what the
consumers (lodging, payment, coupon, point, review) need to undo or finish their own step."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar

from haot.platform.events import EventBody


class ReservationFacts(EventBody):
    """The reservation as it stands after the change the event names."""

    reservation_id: uuid.UUID
    user_id: uuid.UUID
    host_id: uuid.UUID
    lodging_id: uuid.UUID
    room_type_id: uuid.UUID
    check_in: date
    check_out: date
    amount: int
    subtotal: int
    points_used: int
    user_coupon_id: uuid.UUID | None
    payment_id: str | None
    status: str

    def aggregate_id(self) -> str:
        return str(self.reservation_id)


class ReservationConfirmed(ReservationFacts):
    TYPE: ClassVar[str] = "reservation.reservation_confirmed"


class ReservationExpired(ReservationFacts):
    TYPE: ClassVar[str] = "reservation.reservation_expired"


class ReservationFailed(ReservationFacts):
    TYPE: ClassVar[str] = "reservation.reservation_failed"


class ReservationCancelled(ReservationFacts):
    """``refund_amount`` won go back to the guest (``refund_percent`` of the amount, by the
    policy); ``points_refund`` points go back if it ``was_confirmed``, else every point held."""

    TYPE: ClassVar[str] = "reservation.reservation_cancelled"
    refund_amount: int
    refund_percent: int
    was_confirmed: bool
    points_refund: int


class ReservationCompleted(ReservationFacts):
    TYPE: ClassVar[str] = "reservation.reservation_completed"


class PaymentRejected(ReservationFacts):
    """A payment arrived that this reservation will not take (late, stray or another amount):
    the payment context returns it."""

    TYPE: ClassVar[str] = "reservation.payment_rejected"
    rejected_payment_id: str
    reason: str


# Every end state in which the stay will not happen: holds, coupons and points go back.
GIVEN_UP: tuple[type[ReservationFacts], ...] = (
    ReservationExpired,
    ReservationFailed,
    ReservationCancelled,
)
