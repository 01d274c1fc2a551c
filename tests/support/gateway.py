"""An in-memory PaymentGateway for saga tests that do not need HTTP: it implements the real
protocol and keeps PortOne's rules that matter (pre-registered amount, cancellable amount)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from haot.payment.gateway import (
    GatewayCancellation,
    GatewayError,
    GatewayPayment,
    GatewayStatus,
    GatewayUnavailable,
    GatewayWebhook,
    InvalidWebhookSignature,
)
from haot.platform.clock import utcnow


@dataclass
class _Record:
    amount: int
    status: GatewayStatus = GatewayStatus.READY
    paid: int = 0
    cancelled: int = 0
    currency: str = "KRW"
    created_at: datetime = field(default_factory=utcnow)


class InMemoryGateway:
    def __init__(self) -> None:
        self.payments: dict[str, _Record] = {}
        self.cancel_calls: list[tuple[str, int]] = []
        self.fail_next: list[str] = []  # method names that raise GatewayUnavailable once
        self._ids = itertools.count(1)

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail_next:
            self.fail_next.remove(method)
            raise GatewayUnavailable(f"injected failure in {method}")

    async def pre_register(self, payment_id: str, *, amount: int, currency: str = "KRW") -> None:
        self._maybe_fail("pre_register")
        self.payments.setdefault(payment_id, _Record(amount=amount, currency=currency))

    def pay(self, payment_id: str, *, amount: int | None = None, currency: str = "KRW") -> None:
        """The guest pays at checkout (``amount`` other than registered: a tampered client)."""
        record = self.payments[payment_id]
        record.paid = record.amount if amount is None else amount
        record.currency = currency
        record.status = GatewayStatus.PAID

    def decline(self, payment_id: str) -> None:
        self.payments[payment_id].status = GatewayStatus.FAILED

    async def get_payment(self, payment_id: str) -> GatewayPayment | None:
        self._maybe_fail("get_payment")
        record = self.payments.get(payment_id)
        if record is None:
            return None
        return GatewayPayment(
            payment_id=payment_id,
            status=record.status,
            currency=record.currency,
            total_amount=record.paid if record.paid else record.amount,
            paid_amount=record.paid,
            cancelled_amount=record.cancelled,
            transaction_id=f"tx-{payment_id}" if record.paid else None,
            paid_at=utcnow() if record.paid else None,
        )

    async def cancel(
        self, payment_id: str, *, amount: int, reason: str, current_cancellable_amount: int
    ) -> GatewayCancellation:
        self._maybe_fail("cancel")
        record = self.payments[payment_id]
        cancellable = record.paid - record.cancelled
        if current_cancellable_amount != cancellable:
            raise GatewayError("CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN")
        if amount > cancellable:
            raise GatewayError("CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT")
        record.cancelled += amount
        record.status = (
            GatewayStatus.CANCELLED
            if record.cancelled >= record.paid
            else GatewayStatus.PARTIAL_CANCELLED
        )
        self.cancel_calls.append((payment_id, amount))
        return GatewayCancellation(
            cancellation_id=f"c{next(self._ids)}", amount=amount, cancelled_at=utcnow()
        )

    async def list_payments(self, *, since: datetime, until: datetime) -> list[GatewayPayment]:
        found = []
        for payment_id, record in self.payments.items():
            if since <= record.created_at < until:
                payment = await self.get_payment(payment_id)
                assert payment is not None
                found.append(payment)
        return found

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayWebhook:
        raise InvalidWebhookSignature("the in-memory gateway takes no webhooks")

    async def aclose(self) -> None:
        return None


async def pay_at_checkout(
    platform: Any, gateway: InMemoryGateway, payment_id: str, **payment: Any
) -> None:
    """What a guest's browser does: follow the reservation's ``checkout_url`` (our redirect,
    which pre-registers the amount at the gateway), then pay on the gateway's page."""
    await platform.services["payment"].checkout(payment_id)
    gateway.pay(payment_id, **payment)
