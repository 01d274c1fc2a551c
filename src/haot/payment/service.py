"""Payment use cases: create (pre-register), verify by re-querying the gateway, refund, reconcile.

The gateway is the only source of truth about money: a browser redirect, a webhook and the
reconciler all end in ``sync``, which re-queries PortOne and moves our record with a
compare-and-set, so replays and races change state once.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import structlog
from prometheus_client import Counter

from haot.payment import events
from haot.payment.domain import PaymentStatus, Verdict, judge, status_after_refund
from haot.payment.gateway import (
    GatewayError,
    GatewayPayment,
    GatewayUnavailable,
    PaymentGateway,
)
from haot.payment.models import Payment, Refund, WebhookReceipt
from haot.payment.repository import PaymentRepository
from haot.payment.schemas import CreatedPayment, PaymentRead
from haot.platform.auth import Principal
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, NotFound
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams

log = structlog.get_logger(__name__)

PAYMENTS = Counter("haot_payments_total", "Payment state changes", ["status"])
DISCREPANCIES = Counter(
    "haot_payment_discrepancies_total", "Payments whose gateway amount or currency did not match"
)
REFUNDS = Counter("haot_payment_refunds_total", "Refunds executed at the gateway", ["outcome"])


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    title = "Payment not found"


class PaymentNotPayable(Conflict):
    code = "payment_not_payable"
    title = "The payment is no longer waiting to be paid"


class PaymentRefused(Conflict):
    code = "reservation_given_up"
    title = "The reservation was given up; no payment can be created for it"


RECHECK_STEP = timedelta(minutes=2)
RECHECKS = 7  # at the next sweep, then 4, 8, 16, 32, 64 and 128 minutes after giving up


def new_payment_id() -> str:
    return f"pay_{new_id().hex}"


class PaymentService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        gateway: PaymentGateway,
        checkout_base: str,
        return_url: str,
        redirect_base: str | None = None,
    ) -> None:
        """``checkout_base``: the gateway's checkout pages; ``redirect_base``: this service's own
        ``/payments`` pages, where ``checkout_url`` sends the guest first (``checkout``);
        without it, ``checkout_url`` names the gateway's page directly."""
        self._uow = uow
        self._gateway = gateway
        self._checkout_base = checkout_base.rstrip("/")
        self._return_url = return_url
        self._redirect_base = redirect_base.rstrip("/") if redirect_base else None

    def checkout_url(self, payment_id: str) -> str:
        """The link a guest follows to pay."""
        if self._redirect_base is None:
            return self.gateway_checkout_url(payment_id)
        return f"{self._redirect_base}/{payment_id}/checkout"

    def gateway_checkout_url(self, payment_id: str) -> str:
        from urllib.parse import quote

        return (
            f"{self._checkout_base}/{payment_id}"
            f"?return_url={quote(self._return_url.format(payment_id=payment_id), safe='')}"
        )

    async def create_payment(
        self, *, reservation_id: uuid.UUID, user_id: uuid.UUID, amount: int, order_name: str
    ) -> CreatedPayment:
        """One payment per reservation (idempotent). Its amount is pre-registered at the gateway
        (so a client cannot pay a different amount unnoticed) when the guest goes to pay
        (``checkout``), not here: a booking that is never paid costs the gateway nothing, and the
        booking does not wait for PortOne. Every completion re-queries and compares the amount
        anyway."""
        async with self._uow() as uow:
            repo = PaymentRepository(uow.session)
            now = utcnow()
            payment_id = new_payment_id()
            created = await repo.insert_unless_reserved(
                {
                    "id": payment_id,
                    "reservation_id": reservation_id,
                    "user_id": user_id,
                    "order_name": order_name[:200],
                    "amount": amount,
                    "currency": "KRW",
                    "status": PaymentStatus.READY.value,
                    "cancelled_amount": 0,
                    "rechecks": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if not created:
                existing = await repo.get_by_reservation(reservation_id)
                if existing is None or existing.status == PaymentStatus.FAILED.value:
                    # The reservation was given up (and its payment voided, or fenced before it
                    # existed) while the saga was still running: no money may be asked for.
                    raise PaymentRefused()
                payment_id = existing.id
            await uow.commit()
        return CreatedPayment(payment_id=payment_id, checkout_url=self.checkout_url(payment_id))

    async def checkout(self, payment_id: str) -> str:
        """Where the guest pays: the amount is pre-registered first (again, harmlessly, on a
        second visit), then the gateway's checkout page. Unknown or finished payments get
        ``PaymentNotFound`` / ``PaymentNotPayable``; a gateway that cannot be reached, 503."""
        async with self._uow() as uow:
            payment = await PaymentRepository(uow.session).get(payment_id)
        if payment is None:
            raise PaymentNotFound()
        if payment.status != PaymentStatus.READY.value:
            raise PaymentNotPayable(f"the payment is {payment.status}")
        try:
            await self._gateway.pre_register(payment.id, amount=payment.amount, currency="KRW")
        except GatewayUnavailable:
            raise
        except GatewayError as exc:
            # Paid already (its webhook not here yet), say: the checkout page tells the guest.
            log.info("pre_register_refused", payment_id=payment.id, error=str(exc))
        return self.gateway_checkout_url(payment.id)

    async def get_for(self, principal: Principal, payment_id: str) -> PaymentRead:
        async with self._uow() as uow:
            payment = await PaymentRepository(uow.session).get(payment_id)
        if payment is None or not (principal.is_admin or payment.user_id == principal.user_id):
            raise PaymentNotFound()
        return PaymentRead.model_validate(payment)

    async def list_payments(
        self,
        *,
        user_id: uuid.UUID | None,
        status: PaymentStatus | None,
        reservation_id: uuid.UUID | None,
        paging: PageParams,
    ) -> Page[PaymentRead]:
        async with self._uow() as uow:
            rows, total = await PaymentRepository(uow.session).search(
                user_id=user_id,
                status=status.value if status else None,
                reservation_id=reservation_id,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[PaymentRead].of(rows, total, paging, PaymentRead.model_validate)

    async def complete(self, principal: Principal, payment_id: str) -> PaymentRead:
        """Browser-redirect completion: the client says "done", we ask the gateway."""
        await self.get_for(principal, payment_id)
        await self.sync(payment_id)
        return await self.get_for(principal, payment_id)

    async def handle_webhook(self, body: bytes, headers: dict[str, str]) -> bool:
        """Verify, record, re-query, then mark processed. True when this delivery was processed
        now, False for a replay of one processed before. Processing that fails (the gateway or
        the database down) raises, so the delivery is answered 5xx and PortOne retries it: never
        a 2xx for a webhook whose effect was lost. Processing twice is harmless (``sync`` is
        idempotent), so concurrent deliveries of one id may both process."""
        webhook = self._gateway.verify_webhook(body, headers)
        async with self._uow() as uow:
            receipt = await uow.session.get(WebhookReceipt, webhook.webhook_id)
            if receipt is not None and receipt.processed_at is not None:
                return False
            if receipt is None:
                PaymentRepository(uow.session).add(
                    WebhookReceipt(
                        webhook_id=webhook.webhook_id,
                        type=webhook.type,
                        payment_id=webhook.payment_id,
                        received_at=utcnow(),
                    )
                )
                # A concurrent delivery of the same id may have recorded it: process anyway (if
                # the database is down instead, processing fails below and the answer is 5xx).
                with contextlib.suppress(Exception):
                    await uow.commit()
        if webhook.payment_id:
            await self.sync(webhook.payment_id)
        async with self._uow() as uow:
            await PaymentRepository(uow.session).mark_receipt_processed(
                webhook.webhook_id, utcnow()
            )
            await uow.commit()
        return True

    async def sync(self, payment_id: str) -> None:
        """Bring our record in line with the gateway's."""
        seen = await self._gateway.get_payment(payment_id)
        async with self._uow() as uow:
            repo = PaymentRepository(uow.session)
            payment = await repo.get(payment_id, for_update=True)
            if payment is None:
                return
            if seen is None:
                return
            await self._apply(uow, payment, seen)
            await uow.commit()
        await self.execute_refunds(payment_id=payment_id)

    async def _apply(self, uow: UnitOfWork, payment: Payment, seen: GatewayPayment) -> None:
        repo = PaymentRepository(uow.session)
        now = utcnow()
        reservation_id = payment.reservation_id
        if payment.status != PaymentStatus.READY.value:
            # Money arrived for a payment we had given up on (expired, cancelled, declined):
            # it must go back.
            # ``seen`` was read before this sync locked the payment: another sync may have asked
            # for (or made) a refund since. What is still owed counts our own record and the
            # refunds already asked for, so concurrent syncs never ask twice for the same money.
            owed = seen.paid_amount - max(seen.cancelled_amount, payment.cancelled_amount)
            owed -= await repo.pending_refund_total(payment.id)
            if owed > 0 and payment.status in (
                PaymentStatus.FAILED.value,
                PaymentStatus.DISCREPANT.value,
            ):
                await self.request_refund(
                    uow,
                    payment,
                    amount=owed,
                    key=f"late:{payment.id}",
                    reason="payment arrived after the reservation was given up",
                )
                payment.recheck_at = None
            return
        verdict = judge(payment.amount, payment.currency, seen)
        if verdict is Verdict.WAIT:
            return
        if verdict is Verdict.PAID:
            if await repo.transition(
                payment.id,
                from_status=PaymentStatus.READY.value,
                to_status=PaymentStatus.PAID.value,
                transaction_id=seen.transaction_id,
                paid_at=seen.paid_at or now,
                updated_at=now,
            ):
                PAYMENTS.labels("PAID").inc()
                uow.emit(
                    events.PaymentPaid(
                        payment_id=payment.id,
                        reservation_id=reservation_id,
                        amount=payment.amount,
                    )
                )
            return
        if verdict is Verdict.FAILED:
            if await repo.transition(
                payment.id,
                from_status=PaymentStatus.READY.value,
                to_status=PaymentStatus.FAILED.value,
                failure_reason=f"gateway status {seen.status.value}",
                updated_at=now,
            ):
                PAYMENTS.labels("FAILED").inc()
                uow.emit(
                    events.PaymentFailed(
                        payment_id=payment.id,
                        reservation_id=reservation_id,
                        amount=payment.amount,
                    )
                )
            return
        if await repo.transition(
            payment.id,
            from_status=PaymentStatus.READY.value,
            to_status=PaymentStatus.DISCREPANT.value,
            failure_reason=(
                f"gateway has {seen.total_amount} {seen.currency} (paid {seen.paid_amount}); "
                f"expected {payment.amount} {payment.currency}"
            ),
            updated_at=now,
        ):
            DISCREPANCIES.inc()
            PAYMENTS.labels("DISCREPANT").inc()
            log.error("payment_discrepant", payment_id=payment.id, seen=seen.paid_amount)
            uow.emit(
                events.PaymentDiscrepant(
                    payment_id=payment.id,
                    reservation_id=reservation_id,
                    amount=payment.amount,
                )
            )
            if seen.paid_amount > seen.cancelled_amount:
                await self.request_refund(
                    uow,
                    payment,
                    amount=seen.paid_amount - seen.cancelled_amount,
                    key=f"discrepant:{payment.id}",
                    reason="amount or currency did not match the reservation",
                )

    async def request_refund(
        self,
        uow: UnitOfWork,
        payment: Payment,
        *,
        amount: int,
        key: str,
        reason: str,
    ) -> bool:
        """Record a refund to execute (inside the caller's transaction); once per ``key``."""
        repo = PaymentRepository(uow.session)
        if amount <= 0 or await repo.refund_by_key(key) is not None:
            return False
        now = utcnow()
        repo.add(
            Refund(
                id=new_id(),
                payment_id=payment.id,
                key=key,
                amount=amount,
                reason=reason[:300],
                status="PENDING",
                created_at=now,
                updated_at=now,
            )
        )
        return True

    async def execute_refunds(self, *, payment_id: str | None = None, limit: int = 50) -> int:
        """Send PENDING refunds to the gateway. Safe to run from many workers and to re-run after
        a crash: before each cancel the gateway is re-queried, and a refund it already shows is
        only recorded; ``current_cancellable_amount`` makes a racing duplicate fail."""
        done = 0
        async with self._uow() as uow:
            repo = PaymentRepository(uow.session)
            pending = [
                r
                for r in await repo.pending_refunds(limit=limit)
                if payment_id is None or r.payment_id == payment_id
            ]
            for refund in pending:
                payment = await repo.get(refund.payment_id, for_update=True)
                if payment is None:
                    continue
                try:
                    await self._execute_one(uow, payment, refund)
                    done += 1
                except GatewayError as exc:
                    REFUNDS.labels("error").inc()
                    log.warning("refund_failed", payment_id=payment.id, error=exc.detail)
            await uow.commit()
        return done

    async def _execute_one(self, uow: UnitOfWork, payment: Payment, refund: Refund) -> None:
        seen = await self._gateway.get_payment(payment.id)
        if seen is None:
            raise GatewayError(f"gateway does not know payment {payment.id}")
        now = utcnow()
        recorded = payment.cancelled_amount
        if seen.cancelled_amount >= recorded + refund.amount:
            REFUNDS.labels("already_done").inc()
            refunded = refund.amount
        else:
            cancellable = seen.paid_amount - seen.cancelled_amount
            refunded = min(refund.amount, cancellable)
            if refunded > 0:
                cancellation = await self._gateway.cancel(
                    payment.id,
                    amount=refunded,
                    reason=refund.reason,
                    current_cancellable_amount=cancellable,
                )
                refund.gateway_cancellation_id = cancellation.cancellation_id
            REFUNDS.labels("done").inc()
        refund.status = "DONE"
        refund.updated_at = now
        # What was refunded, never more than was paid: a refund that found nothing left to
        # cancel (another one returned the money first) records nothing and tells nobody.
        payment.cancelled_amount = min(recorded + refunded, max(seen.paid_amount, recorded))
        if payment.status in (PaymentStatus.PAID.value, PaymentStatus.PARTIALLY_CANCELLED.value):
            payment.status = status_after_refund(payment.amount, payment.cancelled_amount).value
        payment.updated_at = now
        if refunded <= 0:
            return
        uow.emit(
            events.PaymentRefunded(
                payment_id=payment.id,
                reservation_id=payment.reservation_id,
                amount=payment.amount,
                refunded=refunded,
                key=refund.key,
            )
        )

    async def void(self, uow: UnitOfWork, reservation_id: uuid.UUID, reason: str) -> None:
        """The reservation was given up before payment: a READY payment will never confirm. If the
        saga has not created its payment yet, a FAILED tombstone takes its place, so the late
        ``create_payment`` is refused (the fence)."""
        repo = PaymentRepository(uow.session)
        payment = await repo.get_by_reservation(reservation_id, for_update=True)
        now = utcnow()
        if payment is None:
            repo.add(
                Payment(
                    id=f"void_{reservation_id.hex}",
                    reservation_id=reservation_id,
                    user_id=uuid.UUID(int=0),
                    order_name="",
                    amount=0,
                    currency="KRW",
                    status=PaymentStatus.FAILED.value,
                    cancelled_amount=0,
                    failure_reason=f"{reason} before a payment was created",
                    rechecks=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            return
        if await repo.transition(
            payment.id,
            from_status=PaymentStatus.READY.value,
            to_status=PaymentStatus.FAILED.value,
            failure_reason=reason,
            recheck_at=now,
            updated_at=now,
        ):
            # The guest may have paid in the same instant: ask the gateway once more, and a
            # payment that did arrive is refunded by ``sync``.
            payment_id = payment.id
            uow.after_commit(lambda: self.sync(payment_id))

    async def refund_reservation(
        self, uow: UnitOfWork, reservation_id: uuid.UUID, *, amount: int, key: str, reason: str
    ) -> None:
        repo = PaymentRepository(uow.session)
        payment = await repo.get_by_reservation(reservation_id, for_update=True)
        if payment is None:
            return
        if payment.status == PaymentStatus.READY.value:
            await self.void(uow, reservation_id, reason)
            return
        if await self.request_refund(uow, payment, amount=amount, key=key, reason=reason):
            payment_id = payment.id
            uow.after_commit(lambda: self.execute_refunds(payment_id=payment_id))

    async def refund_payment_in_full(
        self, uow: UnitOfWork, payment_id: str, *, key: str, reason: str
    ) -> None:
        """A payment the reservation would not take (it was already given up) goes back whole."""
        payment = await PaymentRepository(uow.session).get(payment_id, for_update=True)
        if payment is None:
            return
        if await self.request_refund(
            uow, payment, amount=payment.amount - payment.cancelled_amount, key=key, reason=reason
        ):
            uow.after_commit(lambda: self.execute_refunds(payment_id=payment_id))

    async def reconcile(
        self, *, older_than: timedelta = timedelta(minutes=2), limit: int = 200
    ) -> dict[str, int]:
        """Heal missed webhooks: re-query READY payments older than ``older_than``; retry
        pending refunds."""
        async with self._uow() as uow:
            ids = list(
                await PaymentRepository(uow.session).stale_ready(
                    older_than=utcnow() - older_than, limit=limit
                )
            )
        synced = 0
        for payment_id in ids:
            try:
                await self.sync(payment_id)
                synced += 1
            except GatewayError:
                log.warning("reconcile_sync_failed", payment_id=payment_id)
        rechecked = await self._recheck_given_up(limit=limit)
        refunds = await self.execute_refunds(limit=limit)
        return {"checked": len(ids), "synced": synced, "rechecked": rechecked, "refunds": refunds}

    async def _recheck_given_up(self, *, limit: int) -> int:
        """Ask the gateway again about payments we gave up on (backoff, a bounded number of
        times): a guest may have paid anyway and the webhook may be lost; ``sync`` refunds."""
        now = utcnow()
        async with self._uow() as uow:
            due = list(await PaymentRepository(uow.session).due_rechecks(now=now, limit=limit))
            for payment in due:
                payment.rechecks += 1
                payment.recheck_at = (
                    now + RECHECK_STEP * 2**payment.rechecks
                    if payment.rechecks < RECHECKS
                    else None
                )
            ids = [payment.id for payment in due]
            await uow.commit()
        for payment_id in ids:
            try:
                await self.sync(payment_id)
            except GatewayError:
                log.warning("recheck_failed", payment_id=payment_id)
        return len(ids)
