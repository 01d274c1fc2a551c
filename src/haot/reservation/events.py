"""Events the reservation context emits (topic ``haot.reservation``). Each carries what the
consumers (lodging, payment, coupon, point, review) need to undo or finish their own step."""

from __future__ import annotations

RESERVATION_CONFIRMED = "reservation.reservation_confirmed"
RESERVATION_EXPIRED = "reservation.reservation_expired"
RESERVATION_FAILED = "reservation.reservation_failed"
RESERVATION_CANCELLED = "reservation.reservation_cancelled"
RESERVATION_COMPLETED = "reservation.reservation_completed"
PAYMENT_REJECTED = "reservation.payment_rejected"

# Every end state in which the stay will not happen: holds, coupons and points go back.
GIVEN_UP = (RESERVATION_EXPIRED, RESERVATION_FAILED, RESERVATION_CANCELLED)
