"""The real webhook path: the app on a socket (uvicorn) with the built-in fake PortOne, reached by
the production adapter (the official SDK) and delivering Standard Webhooks to the app itself.
Replayed, concurrent and out-of-order deliveries change the payment's state exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook

from haot.app import create_app
from haot.fake_portone import FAKE_STORE_ID, FakePortOne
from haot.payment.events import PaymentPaid
from haot.payment.portone import PortOneGateway
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.reservation.conftest import open_lodging, outbox, settle
from tests.reservation.invariants import assert_consistent
from tests.support.services import free_port

WEBHOOK_PATH = "/api/v1/webhooks/portone"


@dataclass
class Live:
    settings: Settings
    platform: Platform
    fake: FakePortOne
    client: httpx.AsyncClient
    room_type_id: uuid.UUID

    def auth(self, principal: Principal) -> dict[str, str]:
        token = self.platform.signer.issue(principal.user_id, principal.role).token
        return {"Authorization": f"Bearer {token}"}

    async def book(self, guest: Principal, start: int = 10) -> dict[str, Any]:
        check_in = seoul_today() + timedelta(days=start)
        response = await self.client.post(
            "/api/v1/reservations",
            json={
                "room_type_id": str(self.room_type_id),
                "check_in": check_in.isoformat(),
                "check_out": (check_in + timedelta(days=2)).isoformat(),
                "guests": 2,
            },
            headers=self.auth(guest),
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def approve(self, payment_id: str) -> None:
        """The guest follows the checkout link (which pre-registers the amount) and pays on the
        fake's checkout page."""
        checkout = await self.client.get(f"/payments/{payment_id}/checkout")
        assert checkout.status_code == 303, checkout.text
        assert f"/fake-portone/checkout/{payment_id}?" in checkout.headers["location"]
        response = await self.client.post(f"/fake-portone/checkout/{payment_id}/approve")
        assert response.status_code == 303, response.text

    async def webhook(self, payment_id: str, type_: str = "Transaction.Paid") -> tuple[str, str]:
        """A PortOne webhook body for the payment as the fake has it: (webhook id, body)."""
        payment = await self.fake.store.get_payment(payment_id)
        assert payment is not None
        body = orjson.dumps(
            {
                "type": type_,
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {
                    "paymentId": payment_id,
                    "storeId": FAKE_STORE_ID,
                    "transactionId": payment["transactionId"],
                },
            }
        ).decode()
        return f"msg_{uuid.uuid4().hex}", body

    def signed(self, webhook_id: str, body: str) -> dict[str, str]:
        now = datetime.now(UTC)
        signature = Webhook(self.settings.portone_webhook_secret).sign(webhook_id, now, body)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }

    async def deliver(self, webhook_id: str, body: str) -> int:
        response = await self.client.post(
            WEBHOOK_PATH, content=body.encode(), headers=self.signed(webhook_id, body)
        )
        return response.status_code

    async def payment(self, guest: Principal, payment_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/payments/{payment_id}", headers=self.auth(guest))
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def reservation(self, guest: Principal, reservation_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/reservations/{reservation_id}", headers=self.auth(guest)
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def paid_events(self, payment_id: str) -> int:
        return sum(
            1
            for row in await outbox(self.platform, PaymentPaid.TYPE)
            if row.payload["payment_id"] == payment_id
        )


@pytest.fixture
async def live(pg_settings: Settings) -> AsyncIterator[Live]:
    """``create_app`` as shipped (no gateway override) on a real port: the PortOne adapter calls
    the mounted fake over HTTP and the fake posts its webhooks back to the app."""
    port = free_port()
    settings = make_settings(pg_settings.database_url, public_base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    fake: FakePortOne = app.state.fake_portone
    fake.sender.backoff = 0.01
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    try:
        assert server.started, "uvicorn did not start"
        platform: Platform = app.state.platform
        assert isinstance(platform.services["payment.gateway"], PortOneGateway)
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        _, room_type_id = await open_lodging(platform, host, seoul_today(), rooms=1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            yield Live(settings, platform, fake, client, room_type_id)
            await settle(platform)
            await fake.sender.drain()
    finally:
        server.should_exit = True
        await task


async def assert_paid_once(live: Live, guest: Principal, created: dict[str, Any]) -> None:
    await settle(live.platform)
    payment = await live.payment(guest, created["payment_id"])
    assert payment["status"] == "PAID"
    assert await live.paid_events(created["payment_id"]) == 1
    assert (await live.reservation(guest, created["id"]))["status"] == "CONFIRMED"
    await assert_consistent(live.platform)


async def test_webhook_replayed_five_times_changes_state_once(live: Live) -> None:
    await live.fake.set_faults(drop=True)  # only our deliveries reach the app
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])
    webhook_id, body = await live.webhook(created["payment_id"])
    statuses = [await live.deliver(webhook_id, body) for _ in range(5)]
    assert statuses == [200] * 5
    await assert_paid_once(live, guest, created)


@pytest.mark.parametrize("same_id", [True, False], ids=["one-webhook-id", "distinct-ids"])
async def test_concurrent_webhooks_change_state_once(live: Live, same_id: bool) -> None:
    await live.fake.set_faults(drop=True)
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])
    deliveries = [await live.webhook(created["payment_id"]) for _ in range(5)]
    if same_id:
        deliveries = [deliveries[0]] * 5
    statuses = await asyncio.gather(*(live.deliver(i, b) for i, b in deliveries))
    assert list(statuses) == [200] * 5
    await assert_paid_once(live, guest, created)


async def test_fake_portone_duplicate_deliveries_change_state_once(live: Live) -> None:
    await live.fake.set_faults(duplicate=5)
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])
    await live.fake.sender.drain()
    sent = [
        d
        for d in await live.fake.deliveries()
        if d.get("payment_id") == created["payment_id"] and d.get("type") == "Transaction.Paid"
    ]
    assert len(sent) == 5
    assert all(d.get("status") == 200 for d in sent), sent
    await assert_paid_once(live, guest, created)


async def test_stale_webhooks_after_payment_change_nothing(live: Live) -> None:
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])  # the fake's own webhook confirms it
    await live.fake.sender.drain()
    await assert_paid_once(live, guest, created)
    for kind in ("Transaction.Ready", "Transaction.Failed", "Transaction.Paid"):
        assert await live.deliver(*await live.webhook(created["payment_id"], kind)) == 200
    await assert_paid_once(live, guest, created)
    assert (await live.payment(guest, created["payment_id"]))["cancelled_amount"] == 0


async def test_webhook_with_a_bad_signature_is_refused_and_changes_nothing(live: Live) -> None:
    await live.fake.set_faults(drop=True)
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])
    webhook_id, body = await live.webhook(created["payment_id"])
    headers = live.signed(webhook_id, body)
    tampered = body.replace("Transaction.Paid", "Transaction.Paid ")
    response = await live.client.post(WEBHOOK_PATH, content=tampered.encode(), headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook_signature"
    await settle(live.platform)
    assert (await live.payment(guest, created["payment_id"]))["status"] == "READY"
    # The same webhook, correctly signed, still goes through afterwards (nothing was recorded).
    assert await live.deliver(webhook_id, body) == 200
    await assert_paid_once(live, guest, created)


async def test_a_webhook_whose_processing_failed_is_answered_5xx_and_processed_on_retry(
    live: Live,
) -> None:
    """The receipt used to be stored first and the failure swallowed: the delivery got a 200, and
    PortOne's retry was taken for a duplicate, so the payment was never confirmed by it."""
    await live.fake.set_faults(drop=True)  # only our deliveries reach the app
    guest = Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())
    created = await live.book(guest)
    await live.approve(created["payment_id"])
    webhook_id, body = await live.webhook(created["payment_id"])

    await live.fake.set_faults(http_502=20)  # the re-query of the payment fails
    assert await live.deliver(webhook_id, body) >= 500
    assert (await live.payment(guest, created["payment_id"]))["status"] == "READY"

    await live.fake.set_faults(http_502=0)
    assert await live.deliver(webhook_id, body) == 200  # PortOne's retry is processed
    await assert_paid_once(live, guest, created)
    assert await live.deliver(webhook_id, body) == 200  # and a replay after that changes nothing
    await assert_paid_once(live, guest, created)
