"""The payment context's public interface for other contexts (the reservation saga)."""

from __future__ import annotations

import uuid

from haot.payment.service import PaymentService


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
