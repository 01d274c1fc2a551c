"""The payment gateway as the payment context needs it: PortOne V2 in production
(``haot.payment.portone``, wrapping the official SDK), the built-in fake in development and tests
(the same adapter pointed at ``/fake-portone``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from haot.platform.errors import HaotError


class GatewayStatus(StrEnum):
    """PortOne V2 payment statuses (``Payment.status``)."""

    READY = "READY"
    PENDING = "PENDING"
    VIRTUAL_ACCOUNT_ISSUED = "VIRTUAL_ACCOUNT_ISSUED"
    PAID = "PAID"
    FAILED = "FAILED"
    PARTIAL_CANCELLED = "PARTIAL_CANCELLED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class GatewayPayment:
    """What the gateway says about one payment (re-queried, never taken from the client)."""

    payment_id: str
    status: GatewayStatus
    currency: str
    total_amount: int
    paid_amount: int
    cancelled_amount: int
    transaction_id: str | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GatewayCancellation:
    cancellation_id: str
    amount: int
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class GatewayWebhook:
    """A verified webhook: only ``type`` and ids; the payment itself is always re-queried."""

    webhook_id: str
    type: str
    payment_id: str | None
    transaction_id: str | None


class GatewayError(HaotError):
    status = 502
    code = "payment_gateway_error"
    title = "The payment gateway failed"


class GatewayUnavailable(GatewayError):
    status = 503
    code = "payment_gateway_unavailable"
    title = "The payment gateway is unavailable; try again"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", "1")  # every 503 says when to come back


class InvalidWebhookSignature(HaotError):
    status = 400
    code = "invalid_webhook_signature"
    title = "Webhook signature is missing, invalid or too old"


class PaymentGateway(Protocol):
    async def pre_register(self, payment_id: str, *, amount: int, currency: str = "KRW") -> None:
        """Register the amount PortOne must accept for ``payment_id`` (idempotent)."""

    async def get_payment(self, payment_id: str) -> GatewayPayment | None:
        """The payment as PortOne has it, or None when PortOne does not know it."""

    async def cancel(
        self,
        payment_id: str,
        *,
        amount: int,
        reason: str,
        current_cancellable_amount: int,
    ) -> GatewayCancellation:
        """Cancel ``amount`` (partial or full). ``current_cancellable_amount`` makes a retried or
        concurrent cancel fail instead of refunding twice."""

    async def list_payments(self, *, since: datetime, until: datetime) -> list[GatewayPayment]:
        """Payments created in the window (the reconciler's sweep)."""

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayWebhook:
        """Check the Standard Webhooks signature over the raw body; raise
        ``InvalidWebhookSignature`` when it does not hold."""

    async def aclose(self) -> None: ...
