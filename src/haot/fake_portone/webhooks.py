"""Webhook delivery as PortOne V2 does it: Standard Webhooks signatures (``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` = ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``,
several space-separated when signing with more than one secret), retried with exponential
backoff until the receiver answers 2xx or the attempts run out. Sending happens in background
tasks; the request that caused the event does not wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import structlog
from standardwebhooks.webhooks import Webhook

log = structlog.get_logger(__name__)

DeliveryRecorder = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One event. Retries and duplicate copies keep ``webhook_id`` and ``body``; each attempt is
    signed afresh with the time it is sent."""

    webhook_id: str
    type: str
    payment_id: str
    body: str
    copies: int = 1

    @classmethod
    def create(
        cls, type_: str, data: dict[str, Any], *, copies: int = 1, timestamp: str
    ) -> WebhookMessage:
        body = orjson.dumps({"type": type_, "timestamp": timestamp, "data": data}).decode()
        return cls(
            webhook_id=f"msg_{uuid.uuid4().hex}",
            type=type_,
            payment_id=str(data.get("paymentId", "")),
            body=body,
            copies=copies,
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> WebhookMessage:
        return cls(**orjson.loads(raw))


def sign_headers(
    secrets: Sequence[str], webhook_id: str, body: str, *, at: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` signed with every secret in ``secrets``."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, moment, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
    }


class WebhookSender:
    def __init__(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        http_client: httpx.AsyncClient | None = None,
        attempts: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        timeout: float = 10.0,
        recorder: DeliveryRecorder | None = None,
    ) -> None:
        """``http_client`` may be injected (and replaced later through the attribute), e.g. one
        over ``httpx.ASGITransport`` to deliver in-process; otherwise the sender makes its own."""
        if not secrets:
            raise ValueError("a webhook secret is required")
        self.url = url
        self.secrets = list(secrets)
        self.http_client = http_client
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.recorder = recorder
        self._own_client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _client(self) -> httpx.AsyncClient:
        if self.http_client is not None:
            return self.http_client
        if self._own_client is None:
            self._own_client = httpx.AsyncClient(timeout=self.timeout)
        return self._own_client

    def submit(self, messages: Iterable[WebhookMessage]) -> None:
        """Deliver ``messages`` one after another (every copy, each with retries) in the
        background."""
        batch = list(messages)
        if not batch:
            return
        task = asyncio.create_task(self._deliver_all(batch), name="fake-portone-webhooks")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, messages: list[WebhookMessage]) -> None:
        for message in messages:
            for copy in range(message.copies):
                await self.deliver(message, copy=copy)

    async def deliver(self, message: WebhookMessage, *, copy: int = 0) -> bool:
        """Send one copy until a 2xx answer; False when every attempt failed."""
        for attempt in range(1, self.attempts + 1):
            headers = sign_headers(self.secrets, message.webhook_id, message.body)
            headers["content-type"] = "application/json"
            headers["user-agent"] = "haot-fake-portone"
            outcome: dict[str, Any] = {
                "webhook_id": message.webhook_id,
                "type": message.type,
                "payment_id": message.payment_id,
                "copy": copy,
                "attempt": attempt,
                "url": self.url,
                "at": datetime.now(UTC).isoformat(),
            }
            try:
                response = await self._client().post(
                    self.url, content=message.body.encode(), headers=headers, timeout=self.timeout
                )
                outcome["status"] = response.status_code
                delivered = 200 <= response.status_code < 300
            except Exception as exc:  # connection refused, timeout, an in-process app crashing
                outcome["error"] = type(exc).__name__
                delivered = False
            await self._record(outcome)
            if delivered:
                return True
            if attempt < self.attempts:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
        log.warning(
            "fake_portone_webhook_gave_up",
            webhook_id=message.webhook_id,
            type=message.type,
            attempts=self.attempts,
        )
        return False

    async def _record(self, outcome: dict[str, Any]) -> None:
        if self.recorder is None:
            return
        try:
            await self.recorder(outcome)
        except Exception:
            log.warning("fake_portone_delivery_unrecorded", webhook_id=outcome["webhook_id"])

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float = 10.0) -> None:
        """Wait until every submitted webhook is delivered or given up (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} webhook deliveries still running")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None
