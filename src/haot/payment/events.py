"""Events the payment context emits (topic ``haot.payment``)."""

from __future__ import annotations

from haot.platform.events import Event

PAYMENT_PAID = "payment.payment_paid"
PAYMENT_FAILED = "payment.payment_failed"
PAYMENT_DISCREPANT = "payment.payment_discrepant"
PAYMENT_REFUNDED = "payment.payment_refunded"


def payment_event(
    kind: str, *, payment_id: str, reservation_id: str, amount: int, **extra: object
) -> Event:
    return Event(
        type=kind,
        aggregate_id=reservation_id,
        payload={
            "payment_id": payment_id,
            "reservation_id": reservation_id,
            "amount": amount,
            **extra,
        },
    )
