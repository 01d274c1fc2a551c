"""PortOne V2 through the official ``portone-server-sdk``: the production gateway, and the same
adapter pointed at the built-in fake (``/fake-portone``) in development and tests.

The SDK builds its own ``httpx.AsyncClient``; the adapter swaps in one it owns (its timeout, an
optional transport such as ``httpx.ASGITransport`` for the fake in-process, a request hook that
sends the trace context of the request or event being served as ``traceparent``, and a response
hook that turns PortOne 5xx answers into ``GatewayUnavailable`` before the SDK tries to parse
them). With traces on, each call to PortOne is a CLIENT span (``_called``), whose id is the
``traceparent`` sent.
"""

from __future__ import annotations

import binascii
import copy
import functools
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import structlog
from portone_server_sdk import PaymentClient
from portone_server_sdk import webhook as portone_webhook
from portone_server_sdk.errors import (
    CancelAmountExceedsCancellableAmountError,
    CancellableAmountConsistencyBrokenError,
    PaymentNotFoundError,
    PgProviderError,
    PortOneError,
    UnknownError,
)
from portone_server_sdk.payment import (
    CancelledPayment,
    FailedPayment,
    FailedPaymentCancellation,
    PaidPayment,
    PartialCancelledPayment,
    PayPendingPayment,
    ReadyPayment,
    RequestedPaymentCancellation,
    SucceededPaymentCancellation,
    VirtualAccountIssuedPayment,
)

from haot.payment.gateway import (
    GatewayCancellation,
    GatewayError,
    GatewayPayment,
    GatewayStatus,
    GatewayUnavailable,
    GatewayWebhook,
    InvalidWebhookSignature,
)
from haot.platform.observability import client_span, current_traceparent, record_response_status
from haot.platform.settings import Settings

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 1000

_TYPED_STATUS: tuple[tuple[type[Any], GatewayStatus], ...] = (
    (ReadyPayment, GatewayStatus.READY),
    (PayPendingPayment, GatewayStatus.PENDING),
    (VirtualAccountIssuedPayment, GatewayStatus.VIRTUAL_ACCOUNT_ISSUED),
    (PaidPayment, GatewayStatus.PAID),
    (FailedPayment, GatewayStatus.FAILED),
    (PartialCancelledPayment, GatewayStatus.PARTIAL_CANCELLED),
    (CancelledPayment, GatewayStatus.CANCELLED),
)


class PortOneRejectedError(GatewayError):
    """PortOne answered with one of its business errors (``{type, message}``)."""

    def __init__(self, portone_type: str, message: str | None) -> None:
        self.portone_type = portone_type
        self.portone_message = message or ""
        super().__init__(f"PortOne {portone_type}: {message or 'no message'}")


class CancellableAmountMismatchError(PortOneRejectedError):
    """``currentCancellableAmount`` no longer holds: another cancel got there first."""

    status = 409
    code = "payment_cancellable_amount_mismatch"
    title = "The payment's cancellable amount changed; re-read it before cancelling"


class CancelAmountExceededError(PortOneRejectedError):
    status = 409
    code = "payment_cancel_amount_exceeded"
    title = "The cancel amount exceeds what is left to cancel"


def _portone_type(exc: PortOneError) -> str:
    if isinstance(exc, UnknownError):
        raw = exc.error.get("type") if isinstance(exc.error, dict) else None
        return str(raw or "UNKNOWN")
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@functools.lru_cache(maxsize=16)
def _sdk_template(secret: str, base_url: str, store_id: str | None) -> PaymentClient:
    return PaymentClient(secret=secret, base_url=base_url, store_id=store_id)


def _unavailable(detail: str) -> GatewayUnavailable:
    return GatewayUnavailable(detail, headers={"Retry-After": "1"})


async def _send_trace(request: httpx.Request) -> None:
    """Every call carries the trace of the request or event that made it (W3C ``traceparent``)."""
    if traceparent := current_traceparent():
        request.headers["traceparent"] = traceparent


async def _raise_on_5xx(response: httpx.Response) -> None:
    """PortOne 5xx (or a proxy's HTML 502) means "try again later"; PortOne's own ``PG_PROVIDER``
    error also travels as 502 but is a real answer, left for the SDK to raise."""
    record_response_status(response.status_code)
    if response.status_code < 500:
        return
    await response.aread()
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("type") == "PG_PROVIDER":
        return
    raise _unavailable(f"PortOne answered {response.status_code}")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("PortOne needs timezone-aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _to_gateway_payment(payment: Any) -> GatewayPayment:
    if isinstance(payment, dict):  # a shape this SDK version does not know: read it raw
        amount = payment.get("amount") or {}
        return GatewayPayment(
            payment_id=str(payment["id"]),
            status=GatewayStatus(str(payment["status"])),
            currency=str(payment.get("currency", "")),
            total_amount=int(amount.get("total", 0)),
            paid_amount=int(amount.get("paid", 0)),
            cancelled_amount=int(amount.get("cancelled", 0)),
            transaction_id=payment.get("transactionId"),
            paid_at=_parse_time(payment.get("paidAt")),
        )
    status = next(s for cls, s in _TYPED_STATUS if isinstance(payment, cls))
    return GatewayPayment(
        payment_id=payment.id,
        status=status,
        currency=str(payment.currency),
        total_amount=payment.amount.total,
        paid_amount=payment.amount.paid,
        cancelled_amount=payment.amount.cancelled,
        transaction_id=payment.transaction_id,
        paid_at=_parse_time(getattr(payment, "paid_at", None)),
    )


class PortOneGateway:
    """``PaymentGateway`` over PortOne V2 (or the fake) with the official SDK doing the calls."""

    def __init__(
        self,
        *,
        api_secret: str,
        base_url: str,
        webhook_secret: str | Sequence[str],
        store_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """``webhook_secret`` may list several secrets (rotation on our side: any one verifies).
        ``transport`` drives PortOne through a custom transport (tests: ``httpx.ASGITransport``);
        ``http_client`` hands over a ready client instead (the adapter adds its trace and 5xx hooks
        to it and does not close it)."""
        secrets = [webhook_secret] if isinstance(webhook_secret, str) else list(webhook_secret)
        if not secrets or not all(secrets):
            raise ValueError("PortOne webhook secret must not be empty")
        for secret in secrets:
            raw = secret.removeprefix("whsec_")
            try:
                binascii.a2b_base64(raw.encode(), strict_mode=True)
            except binascii.Error as exc:
                raise ValueError("PortOne webhook secret must be base64 (whsec_...)") from exc
        self._webhook_secrets = secrets
        self._store_id = store_id
        if http_client is not None:
            self._http = http_client
            self._owns_http = False
            hooks = self._http.event_hooks
            hooks["request"] = [*hooks.get("request", []), _send_trace]
            hooks["response"] = [*hooks.get("response", []), _raise_on_5xx]
            self._http.event_hooks = hooks
        else:
            self._http = httpx.AsyncClient(
                transport=transport,
                timeout=timeout,
                event_hooks={"request": [_send_trace], "response": [_raise_on_5xx]},
            )
            self._owns_http = True
        # A shallow copy of a per-process template: the SDK's constructor builds a dozen httpx
        # clients (~0.1-0.5 s of TLS setup) that the adapter never uses; only the one it swaps in.
        self._sdk = copy.copy(_sdk_template(api_secret, base_url.rstrip("/"), store_id))
        self._sdk._async_client = self._http
        self._span_attributes = {
            "peer.service": "portone",
            "server.address": httpx.URL(base_url).host,
        }

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> PortOneGateway:
        return cls(
            api_secret=settings.portone_api_secret,
            base_url=settings.portone_base_url,
            webhook_secret=settings.portone_webhook_secret,
            transport=transport,
        )

    @property
    def sdk(self) -> PaymentClient:
        """The SDK client underneath (tests and one-off calls the protocol does not cover)."""
        return self._sdk

    def _failure(self, exc: Exception, action: str) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, httpx.TimeoutException | httpx.TransportError):
            log.warning("portone_unreachable", action=action, error=type(exc).__name__)
            return _unavailable(f"PortOne unreachable during {action}: {type(exc).__name__}")
        if isinstance(exc, CancellableAmountConsistencyBrokenError):
            return CancellableAmountMismatchError(_portone_type(exc), exc.message)
        if isinstance(exc, CancelAmountExceedsCancellableAmountError):
            return CancelAmountExceededError(_portone_type(exc), exc.message)
        if isinstance(exc, PgProviderError):
            message = f"{exc.message or ''} (pg {exc.pg_code}: {exc.pg_message})".strip()
            return PortOneRejectedError(_portone_type(exc), message)
        if isinstance(exc, PortOneError):
            log.warning("portone_rejected", action=action, type=_portone_type(exc))
            return PortOneRejectedError(_portone_type(exc), exc.message)
        # The SDK raises ValueError (JSON or shape) for answers it cannot read.
        log.warning("portone_unreadable_answer", action=action, error=type(exc).__name__)
        return GatewayError(f"PortOne answer to {action} was unreadable: {type(exc).__name__}")

    def _called(self, action: str) -> AbstractContextManager[None]:
        """A CLIENT span around one call to PortOne (traces on; else nothing)."""
        return client_span(f"PortOne {action}", self._span_attributes)

    async def pre_register(self, payment_id: str, *, amount: int, currency: str = "KRW") -> None:
        try:
            with self._called("pre-register"):
                await self._sdk.pre_register_payment_async(
                    payment_id=payment_id, total_amount=amount, currency=currency
                )
        except Exception as exc:
            raise self._failure(exc, "pre-register") from exc

    async def get_payment(self, payment_id: str) -> GatewayPayment | None:
        try:
            with self._called("get payment"):
                payment = await self._sdk.get_payment_async(payment_id=payment_id)
        except PaymentNotFoundError:
            return None
        except Exception as exc:
            raise self._failure(exc, "get payment") from exc
        return _to_gateway_payment(payment)

    async def cancel(
        self,
        payment_id: str,
        *,
        amount: int,
        reason: str,
        current_cancellable_amount: int,
    ) -> GatewayCancellation:
        try:
            with self._called("cancel"):
                response = await self._sdk.cancel_payment_async(
                    payment_id=payment_id,
                    amount=amount,
                    reason=reason,
                    current_cancellable_amount=current_cancellable_amount,
                )
        except Exception as exc:
            raise self._failure(exc, "cancel") from exc
        cancellation: Any = response.cancellation
        if isinstance(cancellation, SucceededPaymentCancellation):
            return GatewayCancellation(
                cancellation_id=cancellation.id,
                amount=cancellation.total_amount,
                cancelled_at=_parse_time(cancellation.cancelled_at),
            )
        if isinstance(cancellation, RequestedPaymentCancellation):
            return GatewayCancellation(
                cancellation_id=cancellation.id,
                amount=cancellation.total_amount,
                cancelled_at=None,
            )
        if isinstance(cancellation, FailedPaymentCancellation):
            raise GatewayError(f"PortOne cancellation {cancellation.id} failed")
        raise GatewayError("PortOne answered the cancel with an unknown cancellation")

    async def list_payments(self, *, since: datetime, until: datetime) -> list[GatewayPayment]:
        window_from, window_until = _rfc3339(since), _rfc3339(until)
        payments: list[GatewayPayment] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            try:
                with self._called("list payments"):
                    page = await self._sdk.get_all_payments_by_cursor_async(
                        from_=window_from, until=window_until, cursor=cursor, size=LIST_PAGE_SIZE
                    )
            except Exception as exc:
                raise self._failure(exc, "list payments") from exc
            if not page.items:
                break
            payments.extend(_to_gateway_payment(item.payment) for item in page.items)
            if page.items[-1].cursor == cursor:
                raise GatewayError("PortOne's payment cursor did not advance")
            cursor = page.items[-1].cursor
            if len(page.items) < LIST_PAGE_SIZE:
                break
        return payments

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayWebhook:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidWebhookSignature("Webhook body is not UTF-8") from exc
        reason = "MISSING_REQUIRED_HEADERS"
        for secret in self._webhook_secrets:
            try:
                portone_webhook.verify(secret, payload, lowered)
            except portone_webhook.WebhookVerificationError as exc:
                reason = exc.reason
                continue
            except ValueError as exc:  # signed, but not JSON
                raise InvalidWebhookSignature("Webhook body is not JSON") from exc
            break
        else:
            raise InvalidWebhookSignature(f"Webhook verification failed: {reason}")
        document = orjson.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("type"), str):
            raise InvalidWebhookSignature("Webhook body has no type")
        data = document.get("data")
        data = data if isinstance(data, dict) else {}
        payment_id = data.get("paymentId")
        transaction_id = data.get("transactionId")
        return GatewayWebhook(
            webhook_id=lowered["webhook-id"],
            type=document["type"],
            payment_id=payment_id if isinstance(payment_id, str) else None,
            transaction_id=transaction_id if isinstance(transaction_id, str) else None,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
