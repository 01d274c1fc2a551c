"""The payment context's public interface for other contexts (the reservation saga): in-process in
the all-in-one app, over HTTP to the payment service in a split deployment (ADR 0018). Both raise
the same errors."""

from __future__ import annotations

import uuid

from haot.payment.service import PaymentRefused, PaymentService
from haot.platform.service_client import ServiceClient

# The refusals the payment service answers to this call, as the in-process client raises them.
ERRORS = {PaymentRefused.code: PaymentRefused}


class InProcessPaymentClient:
    """Satisfies ``haot.reservation.ports.PaymentPort`` in all-in-one mode."""

    def __init__(self, service: PaymentService) -> None:
        self._service = service

    async def create_payment(
        self, *, reservation_id: uuid.UUID, user_id: uuid.UUID, amount: int, order_name: str
    ) -> tuple[str, str]:
        created = await self._service.create_payment(
            reservation_id=reservation_id, user_id=user_id, amount=amount, order_name=order_name
        )
        return created.payment_id, created.checkout_url


class HttpPaymentClient:
    """Satisfies ``haot.reservation.ports.PaymentPort`` against the payment service."""

    def __init__(self, http: ServiceClient) -> None:
        self._http = http

    async def create_payment(
        self, *, reservation_id: uuid.UUID, user_id: uuid.UUID, amount: int, order_name: str
    ) -> tuple[str, str]:
        # Keyed by the reservation: a repeat answers the payment created first, creating none.
        answer = await self._http.call(
            "POST",
            "/internal/v1/payment/payments",
            json={
                "reservation_id": str(reservation_id),
                "user_id": str(user_id),
                "amount": amount,
                "order_name": order_name,
            },
            idempotent=True,
        )
        return str(answer["payment_id"]), str(answer["checkout_url"])
