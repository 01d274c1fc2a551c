"""Pure payment rules: statuses and what a gateway answer means for our record."""

from __future__ import annotations

from enum import StrEnum

from haot.payment.gateway import GatewayPayment, GatewayStatus


class PaymentStatus(StrEnum):
    READY = "READY"
    PAID = "PAID"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    DISCREPANT = "DISCREPANT"


class Verdict(StrEnum):
    """What re-querying the gateway tells us to do with a READY payment."""

    WAIT = "WAIT"
    PAID = "PAID"
    FAILED = "FAILED"
    DISCREPANT = "DISCREPANT"


def judge(expected_amount: int, expected_currency: str, seen: GatewayPayment) -> Verdict:
    """Never trust the client: only a PAID gateway payment of exactly our amount and currency
    confirms. Paid-but-different is DISCREPANT (money moved that must go back)."""
    if seen.status in (
        GatewayStatus.READY,
        GatewayStatus.PENDING,
        GatewayStatus.VIRTUAL_ACCOUNT_ISSUED,
    ):
        return Verdict.WAIT
    if seen.status == GatewayStatus.FAILED:
        return Verdict.FAILED
    if seen.status == GatewayStatus.PAID:
        if seen.total_amount == expected_amount == seen.paid_amount and (
            seen.currency == expected_currency
        ):
            return Verdict.PAID
        return Verdict.DISCREPANT
    # Cancelled at the gateway before we ever saw it paid: nothing to confirm.
    return Verdict.FAILED


def status_after_refund(amount: int, cancelled: int) -> PaymentStatus:
    if cancelled <= 0:
        return PaymentStatus.PAID
    return PaymentStatus.CANCELLED if cancelled >= amount else PaymentStatus.PARTIALLY_CANCELLED
