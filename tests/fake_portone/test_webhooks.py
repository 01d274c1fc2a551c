"""Webhooks from the fake: PortOne V2 bodies, Standard Webhooks signatures that the official SDK's
``webhook.verify`` accepts (and rejects when tampered), retries with backoff, fault modes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Request
from portone_server_sdk import webhook as portone_webhook
from portone_server_sdk.webhook import (
    WebhookTransactionCancelledCancelled,
    WebhookTransactionCancelledPartialCancelled,
    WebhookTransactionFailed,
    WebhookTransactionPaid,
)
from standardwebhooks.webhooks import Webhook as StandardWebhook

from haot.fake_portone import FAKE_STORE_ID, sign_headers
from haot.payment.gateway import InvalidWebhookSignature
from haot.payment.portone import PortOneGateway
from haot.platform.settings import Settings
from tests.fake_portone.conftest import (
    API_SECRET,
    FAKE_BASE,
    WEBHOOK_SECRET,
    Delivery,
    Harness,
    fake_settings,
)

OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LW5vdC10aGUtb25lLWluLXVzZQ=="
AUTH = {"Authorization": f"PortOne {API_SECRET}"}


def sdk_verify(delivery: Delivery, secret: str = WEBHOOK_SECRET) -> Any:
    return portone_webhook.verify(secret, delivery.body.decode(), delivery.headers)


async def settle(harness: Harness) -> None:
    await harness.fake.sender.drain(within=10)


async def test_paid_webhook_is_signed_and_verifies_with_the_sdk(harness: Harness) -> None:
    await harness.paid("pay-hook", 12_000)
    await settle(harness)
    [delivery] = harness.receiver.accepted
    payment = await harness.gateway.get_payment("pay-hook")
    assert payment is not None

    typed = sdk_verify(delivery)
    assert isinstance(typed, WebhookTransactionPaid)
    assert typed.data.payment_id == "pay-hook"
    assert typed.data.store_id == FAKE_STORE_ID
    assert typed.data.transaction_id == payment.transaction_id
    assert datetime.fromisoformat(typed.timestamp) <= datetime.now(UTC)

    StandardWebhook(WEBHOOK_SECRET).verify(delivery.body, delivery.headers)  # the spec's own lib
    verified = harness.gateway.verify_webhook(delivery.body, delivery.headers)
    assert (verified.type, verified.payment_id, verified.transaction_id) == (
        "Transaction.Paid",
        "pay-hook",
        payment.transaction_id,
    )
    assert verified.webhook_id == delivery.headers["webhook-id"]
    assert delivery.headers["content-type"] == "application/json"


async def test_every_event_has_its_typed_webhook(harness: Harness) -> None:
    await harness.pre_register("pay-no", 3_000)
    await harness.decline("pay-no")
    await harness.paid("pay-yes", 10_000)
    await settle(harness)
    partial = await harness.gateway.cancel(
        "pay-yes", amount=4_000, reason="a night", current_cancellable_amount=10_000
    )
    await settle(harness)
    full = await harness.gateway.cancel(
        "pay-yes", amount=6_000, reason="the rest", current_cancellable_amount=6_000
    )
    await settle(harness)

    typed = [sdk_verify(d) for d in harness.receiver.accepted]
    assert [type(t) for t in typed] == [
        WebhookTransactionFailed,
        WebhookTransactionPaid,
        WebhookTransactionCancelledPartialCancelled,
        WebhookTransactionCancelledCancelled,
    ]
    assert harness.receiver.types() == [
        "Transaction.Failed",
        "Transaction.Paid",
        "Transaction.PartialCancelled",
        "Transaction.Cancelled",
    ]
    assert typed[2].data.cancellation_id == partial.cancellation_id
    assert typed[3].data.cancellation_id == full.cancellation_id
    assert len({d.headers["webhook-id"] for d in harness.receiver.accepted}) == 4


async def test_skip_webhook_sends_none(harness: Harness) -> None:
    await harness.paid("pay-quiet", 2_000)
    await settle(harness)
    response = await harness.client.post(
        "/fake-portone/payments/pay-quiet/cancel",
        json={"reason": "quiet", "skipWebhook": True},
        headers=AUTH,
    )
    assert response.status_code == 200
    await settle(harness)
    assert harness.receiver.types() == ["Transaction.Paid"]


async def test_tampered_webhooks_fail_verification(harness: Harness) -> None:
    await harness.paid("pay-tamper", 5_000)
    await settle(harness)
    [good] = harness.receiver.accepted
    webhook_id = good.headers["webhook-id"]
    body = good.body.decode()

    def resigned(at: datetime, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
        return sign_headers([secret], webhook_id, body, at=at)

    now = datetime.now(UTC)
    tampered: dict[str, tuple[bytes, dict[str, str]]] = {
        "body": (good.body.replace(b"pay-tamper", b"pay-tampex"), good.headers),
        "old timestamp": (good.body, resigned(now - timedelta(seconds=301))),
        "future timestamp": (good.body, resigned(now + timedelta(seconds=301))),
        "wrong secret": (good.body, resigned(now, OTHER_SECRET)),
        "no signature": (
            good.body,
            {k: v for k, v in good.headers.items() if k != "webhook-signature"},
        ),
        "garbage signature": (good.body, {**good.headers, "webhook-signature": "v1,AAAA"}),
        "other id": (good.body, {**good.headers, "webhook-id": "msg_other"}),
    }
    for raw, headers in tampered.values():
        with pytest.raises(InvalidWebhookSignature):
            harness.gateway.verify_webhook(raw, headers)
        with pytest.raises(portone_webhook.WebhookVerificationError):
            portone_webhook.verify(WEBHOOK_SECRET, raw.decode(), headers)

    # Inside the 300 s tolerance a re-signed copy still verifies (the checks above are not vacuous).
    for at in (now - timedelta(seconds=290), now + timedelta(seconds=290)):
        assert harness.gateway.verify_webhook(good.body, resigned(at)).payment_id == "pay-tamper"
    capitalised = {k.title(): v for k, v in good.headers.items()}
    assert harness.gateway.verify_webhook(good.body, capitalised).type == "Transaction.Paid"


async def test_secret_rotation_sends_two_signatures_and_one_suffices(harness: Harness) -> None:
    harness.fake.sender.secrets = [OTHER_SECRET, WEBHOOK_SECRET]
    await harness.paid("pay-rotate", 5_000)
    await settle(harness)
    [delivery] = harness.receiver.accepted
    signatures = delivery.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)

    assert (
        harness.gateway.verify_webhook(delivery.body, delivery.headers).payment_id == "pay-rotate"
    )
    assert isinstance(sdk_verify(delivery, OTHER_SECRET), WebhookTransactionPaid)
    stranger = "whsec_" + "c3RyYW5nZXItc2VjcmV0LXVua25vd24tdG8tcG9ydG9uZQ=="
    with pytest.raises(portone_webhook.WebhookVerificationError):
        sdk_verify(delivery, stranger)
    # Rotation on our side: the adapter may hold the old and the new secret.
    both = PortOneGateway(
        api_secret=API_SECRET,
        base_url=FAKE_BASE,
        webhook_secret=[stranger, OTHER_SECRET],
        transport=harness.transport(),
    )
    try:
        assert both.verify_webhook(delivery.body, delivery.headers).type == "Transaction.Paid"
        alone = {**delivery.headers, "webhook-signature": signatures[1]}  # WEBHOOK_SECRET's only
        with pytest.raises(InvalidWebhookSignature):
            both.verify_webhook(delivery.body, alone)
    finally:
        await both.aclose()


async def test_retries_with_backoff_until_the_receiver_answers_2xx(harness: Harness) -> None:
    harness.receiver.statuses = [500, 503, 404]
    harness.fake.sender.backoff = 0.05
    await harness.paid("pay-retry", 5_000)
    await settle(harness)

    requests = harness.receiver.requests
    assert [r.status for r in requests] == [500, 503, 404, 200]
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    for request in requests:  # every attempt is signed afresh and verifies
        assert isinstance(sdk_verify(request), WebhookTransactionPaid)

    log = [d for d in await harness.fake.deliveries() if d.get("payment_id") == "pay-retry"]
    assert [d["attempt"] for d in log] == [1, 2, 3, 4]
    assert [d["status"] for d in log] == [500, 503, 404, 200]
    moments = [datetime.fromisoformat(d["at"]) for d in log]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1
    assert gaps[2] >= 0.2  # exponential


async def test_retries_are_bounded(harness: Harness) -> None:
    harness.receiver.default = 500
    harness.fake.sender.attempts = 3
    await harness.paid("pay-down", 5_000)
    await settle(harness)
    assert [r.status for r in harness.receiver.requests] == [500, 500, 500]


async def test_connection_errors_are_retried(harness: Harness) -> None:
    failures = 2
    receiver = httpx.ASGITransport(app=harness.receiver.app)

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal failures
        if failures:
            failures -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await receiver.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(flaky)) as client:
        harness.fake.sender.http_client = client
        await harness.paid("pay-flaky", 5_000)
        await settle(harness)
    assert harness.receiver.types() == ["Transaction.Paid"]
    log = [d for d in await harness.fake.deliveries() if d.get("payment_id") == "pay-flaky"]
    assert [d.get("error") for d in log] == ["ConnectError", "ConnectError", None]


async def test_duplicate_fault_sends_each_webhook_n_times(harness: Harness) -> None:
    await harness.fake.set_faults(duplicate=3)
    await harness.paid("pay-dup", 5_000)
    await settle(harness)
    accepted = harness.receiver.accepted
    assert len(accepted) == 3
    assert len({d.headers["webhook-id"] for d in accepted}) == 1
    assert len({d.body for d in accepted}) == 1


async def test_drop_fault_sends_nothing(harness: Harness) -> None:
    await harness.fake.set_faults(drop=True)
    await harness.paid("pay-drop", 5_000)
    await settle(harness)
    await asyncio.sleep(0.05)
    assert harness.receiver.requests == []
    assert [d.get("dropped") for d in await harness.fake.deliveries()] == [True]

    await harness.fake.set_faults(drop=False)
    await harness.paid("pay-kept", 5_000)
    await settle(harness)
    assert [d.json["data"]["paymentId"] for d in harness.receiver.accepted] == ["pay-kept"]


async def test_reorder_fault_delivers_held_webhooks_newest_first(harness: Harness) -> None:
    await harness.fake.set_faults(reorder=3)
    for payment_id in ("pay-r1", "pay-r2"):
        await harness.paid(payment_id, 1_000)
    await settle(harness)
    assert harness.receiver.requests == []  # held until three are waiting
    await harness.paid("pay-r3", 1_000)
    await settle(harness)
    order = [d.json["data"]["paymentId"] for d in harness.receiver.accepted]
    assert order == ["pay-r3", "pay-r2", "pay-r1"]

    # Fewer than the threshold: released (reversed) on demand.
    await harness.paid("pay-r4", 1_000)
    await harness.paid("pay-r5", 1_000)
    await settle(harness)
    assert len(harness.receiver.accepted) == 3
    released = await harness.client.post("/fake-portone/_faults/release")
    assert released.json() == {"released": 2}
    await settle(harness)
    order = [d.json["data"]["paymentId"] for d in harness.receiver.accepted]
    assert order[3:] == ["pay-r5", "pay-r4"]


async def test_faults_over_http(harness: Harness) -> None:
    client = harness.client
    assert (await client.get("/fake-portone/_faults")).json() == {
        "delay": 0.0,
        "duplicate": 1,
        "reorder": 0,
        "drop": False,
        "http_502": 0,
    }
    changed = await client.post("/fake-portone/_faults", json={"duplicate": 2, "http_502": 1})
    assert changed.status_code == 200
    assert changed.json()["duplicate"] == 2
    assert (await harness.fake.faults()).duplicate == 2  # the same state as the Python API

    bad_gateway = await client.get("/fake-portone/payments/pay-x", headers=AUTH)
    assert bad_gateway.status_code == 502
    assert (await client.get("/fake-portone/payments/pay-x", headers=AUTH)).status_code == 404

    for invalid in ({"duplicate": 0}, {"delay": -1}, {"nonsense": True}):
        rejected = await client.post("/fake-portone/_faults", json=invalid)
        assert rejected.status_code == 400, invalid
        assert rejected.json()["type"] == "INVALID_REQUEST"

    await client.post("/fake-portone/_faults", json={"reorder": 10})
    await harness.paid("pay-held", 1_000)
    await settle(harness)
    assert harness.receiver.requests == []
    reset = await client.delete("/fake-portone/_faults")  # resets and releases what was held
    assert reset.json()["reorder"] == 0
    await settle(harness)
    assert len(harness.receiver.accepted) == 2  # still duplicate=2 when it was held
    assert (await harness.fake.faults()).duplicate == 1

    log = await client.get("/fake-portone/_webhooks")
    assert {item["payment_id"] for item in log.json()["items"]} == {"pay-held"}


async def test_fault_control_is_absent_in_production(
    portone_settings: Settings,
) -> None:
    from haot.fake_portone import FakePortOne

    production = portone_settings.model_copy(update={"env": "production"})
    fake = FakePortOne(production)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="http://fake"
    ) as client:
        for method, path in (("GET", "/_faults"), ("POST", "/_faults"), ("GET", "/_webhooks")):
            assert (await client.request(method, path)).status_code == 404
    await fake.aclose()


async def test_webhooks_reach_the_app_itself_in_process(
    sqlite_url: str, redis_available: str, make_harness: Callable[[Settings], Any]
) -> None:
    """The sender's client goes over ASGITransport to the very app that hosts the fake; the
    receiving route verifies with the adapter, as the payment API does."""
    from tests.conftest import _flush_redis

    await _flush_redis(redis_available)
    settings = fake_settings(sqlite_url, portone_webhook_url="http://testserver/_probe/portone")
    harness: Harness = await make_harness(settings)
    verified: list[str] = []

    async def probe(request: Request) -> dict[str, str]:
        webhook = harness.gateway.verify_webhook(await request.body(), request.headers)
        verified.append(webhook.type)
        return {"ok": "yes"}

    harness.app.router.add_api_route("/_probe/portone", probe, methods=["POST"])
    async with httpx.AsyncClient(transport=harness.transport()) as to_self:
        harness.fake.sender.http_client = to_self
        await harness.paid("pay-self", 5_000)
        await settle(harness)
    assert verified == ["Transaction.Paid"]
    log = [d for d in await harness.fake.deliveries() if d.get("payment_id") == "pay-self"]
    assert [d["status"] for d in log] == [200]
