"""Events the payment context emits (topic ``haot.payment``), keyed by reservation: a payment's
events and its reservation's share one order."""

from __future__ import annotations

import uuid
from typing import ClassVar

from haot.platform.events import EventBody


class _PaymentEvent(EventBody):
    payment_id: str
    reservation_id: uuid.UUID
    amount: int

    def aggregate_id(self) -> str:
        return str(self.reservation_id)


class PaymentPaid(_PaymentEvent):
    TYPE: ClassVar[str] = "payment.payment_paid"


class PaymentFailed(_PaymentEvent):
    """The gateway declined it."""

    TYPE: ClassVar[str] = "payment.payment_failed"


class PaymentDiscrepant(_PaymentEvent):
    """The gateway holds another amount or currency than the reservation's."""

    TYPE: ClassVar[str] = "payment.payment_discrepant"


class PaymentRefunded(_PaymentEvent):
    """``refunded`` won was returned by the refund named ``key`` (one event per refund)."""

    TYPE: ClassVar[str] = "payment.payment_refunded"
    refunded: int
    key: str
