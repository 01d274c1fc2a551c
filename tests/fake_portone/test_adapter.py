"""``PortOneGateway`` (the official SDK inside, its HTTP client swapped for one over
``httpx.ASGITransport``) against the fake mounted in the real app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from haot.payment.gateway import GatewayError, GatewayStatus, GatewayUnavailable
from haot.payment.portone import (
    CancelAmountExceededError,
    CancellableAmountMismatchError,
    PortOneGateway,
    PortOneRejectedError,
)
from haot.platform.settings import Settings
from tests.conftest import _flush_redis
from tests.fake_portone.conftest import (
    API_SECRET,
    FAKE_BASE,
    WEBHOOK_SECRET,
    Harness,
    fake_settings,
)


async def test_lifecycle_through_the_adapter(harness: Harness) -> None:
    gateway = harness.gateway
    assert await gateway.get_payment("pay-a") is None

    await gateway.pre_register("pay-a", amount=30_000)
    await gateway.pre_register("pay-a", amount=30_000)  # idempotent
    ready = await gateway.get_payment("pay-a")
    assert ready is not None
    assert (ready.status, ready.total_amount, ready.paid_amount, ready.currency) == (
        GatewayStatus.READY,
        30_000,
        0,
        "KRW",
    )
    assert ready.paid_at is None

    await harness.approve("pay-a")
    paid = await gateway.get_payment("pay-a")
    assert paid is not None
    assert (paid.status, paid.total_amount, paid.paid_amount, paid.cancelled_amount) == (
        GatewayStatus.PAID,
        30_000,
        30_000,
        0,
    )
    assert paid.transaction_id == ready.transaction_id
    assert paid.paid_at is not None
    assert abs(paid.paid_at - datetime.now(UTC)) < timedelta(minutes=1)

    first = await gateway.cancel(
        "pay-a", amount=10_000, reason="one night", current_cancellable_amount=30_000
    )
    assert first.amount == 10_000
    assert first.cancelled_at is not None
    partial = await gateway.get_payment("pay-a")
    assert partial is not None
    assert (partial.status, partial.cancelled_amount) == (GatewayStatus.PARTIAL_CANCELLED, 10_000)

    with pytest.raises(CancellableAmountMismatchError) as stale:
        await gateway.cancel(
            "pay-a", amount=10_000, reason="retry", current_cancellable_amount=30_000
        )
    assert stale.value.portone_type == "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"
    assert isinstance(stale.value, GatewayError)
    assert stale.value.status == 409
    with pytest.raises(CancelAmountExceededError) as exceeded:
        await gateway.cancel("pay-a", amount=20_001, reason="x", current_cancellable_amount=20_000)
    assert exceeded.value.portone_type == "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"

    second = await gateway.cancel(
        "pay-a", amount=20_000, reason="the rest", current_cancellable_amount=20_000
    )
    assert second.cancellation_id != first.cancellation_id
    cancelled = await gateway.get_payment("pay-a")
    assert cancelled is not None
    assert (cancelled.status, cancelled.paid_amount, cancelled.cancelled_amount) == (
        GatewayStatus.CANCELLED,
        30_000,
        30_000,
    )
    with pytest.raises(PortOneRejectedError) as again:
        await gateway.cancel("pay-a", amount=1, reason="again", current_cancellable_amount=0)
    assert again.value.portone_type == "PAYMENT_ALREADY_CANCELLED"
    with pytest.raises(PortOneRejectedError) as unknown:
        await gateway.cancel("pay-nope", amount=1, reason="x", current_cancellable_amount=1)
    assert unknown.value.portone_type == "PAYMENT_NOT_FOUND"


async def test_declined_and_tampered_payments(harness: Harness) -> None:
    await harness.pre_register("pay-declined", 8_000)
    await harness.decline("pay-declined")
    failed = await harness.gateway.get_payment("pay-declined")
    assert failed is not None
    assert (failed.status, failed.paid_amount) == (GatewayStatus.FAILED, 0)

    # A tampered client pays 1,000 instead of 8,000: PortOne reports what was really paid.
    await harness.pre_register("pay-tampered", 8_000)
    await harness.approve("pay-tampered", amount="1000")
    tampered = await harness.gateway.get_payment("pay-tampered")
    assert tampered is not None
    assert (tampered.status, tampered.total_amount, tampered.paid_amount) == (
        GatewayStatus.PAID,
        1_000,
        1_000,
    )

    with pytest.raises(PortOneRejectedError) as already:
        await harness.gateway.pre_register("pay-tampered", amount=8_000)
    assert already.value.portone_type == "ALREADY_PAID"


async def test_list_payments_sweeps_every_page(harness: Harness) -> None:
    since = datetime.now(UTC)
    ids = [f"pay-sweep-{i:03d}" for i in range(105)]  # more than one page of 100
    for payment_id in ids:
        await harness.pre_register(payment_id, 1_000)
    await harness.approve(ids[7])
    until = datetime.now(UTC) + timedelta(seconds=1)

    swept = await harness.gateway.list_payments(since=since, until=until)
    assert [p.payment_id for p in swept] == ids
    assert swept[7].status is GatewayStatus.PAID
    assert await harness.gateway.list_payments(since=until, until=until + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="timezone"):
        await harness.gateway.list_payments(since=datetime(2026, 1, 1), until=until)


async def test_wrong_api_secret_is_a_gateway_error(harness: Harness) -> None:
    wrong = harness.gateway_with(api_secret="not-the-secret")
    try:
        with pytest.raises(PortOneRejectedError) as caught:
            await wrong.get_payment("pay-any")
        assert caught.value.portone_type == "UNAUTHORIZED"
        assert not isinstance(caught.value, GatewayUnavailable)
    finally:
        await wrong.aclose()


async def test_502_fault_makes_the_sdk_fail_and_the_adapter_say_unavailable(
    harness: Harness,
) -> None:
    await harness.pre_register("pay-502", 5_000)
    await harness.fake.set_faults(http_502=2)

    sdk = harness.gateway.sdk  # the very SDK client the adapter drives, minus the adapter
    adapter_client = sdk._async_client
    async with httpx.AsyncClient(transport=harness.transport()) as bare:
        sdk._async_client = bare  # no adapter hook: what the SDK alone does with a 502
        try:
            with pytest.raises(ValueError, match="Expecting value"):  # an HTML 502 page
                await sdk.get_payment_async(payment_id="pay-502")
        finally:
            sdk._async_client = adapter_client

    with pytest.raises(GatewayUnavailable) as caught:
        await harness.gateway.get_payment("pay-502")
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"

    payment = await harness.gateway.get_payment("pay-502")  # the two 502s are spent
    assert payment is not None
    assert payment.status is GatewayStatus.READY
    assert (await harness.fake.faults()).http_502 == 0


async def test_delay_fault_is_measurable(harness: Harness) -> None:
    await harness.pre_register("pay-slow", 5_000)
    started = time.perf_counter()
    await harness.gateway.get_payment("pay-slow")
    fast = time.perf_counter() - started

    await harness.fake.set_faults(delay=0.4)
    started = time.perf_counter()
    assert await harness.gateway.get_payment("pay-slow") is not None
    slow = time.perf_counter() - started
    assert slow >= 0.4
    assert slow > fast + 0.3


async def test_a_timeout_is_unavailable() -> None:
    """A server that accepts and never answers (ASGITransport cannot time out: a real socket)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gateway = PortOneGateway(
        api_secret=API_SECRET,
        base_url=f"http://127.0.0.1:{port}/fake-portone",
        webhook_secret=WEBHOOK_SECRET,
        timeout=0.2,
    )
    try:
        started = time.perf_counter()
        with pytest.raises(GatewayUnavailable):
            await gateway.get_payment("pay-timeout")
        assert time.perf_counter() - started < 2
    finally:
        await gateway.aclose()
        server.close()


async def test_transport_failures_and_pg_errors(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def pg_error(request: httpx.Request) -> httpx.Response:
        body = {
            "type": "PG_PROVIDER",
            "message": "card company said no",
            "pgCode": "X1",
            "pgMessage": "no",
        }
        return httpx.Response(502, json=body)

    def server_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"type": "INTERNAL_ERROR", "message": "boom"})

    handlers: dict[str, Callable[[httpx.Request], httpx.Response]] = {
        "refuse": refuse,
        "pg": pg_error,
        "500": server_error,
    }
    current: list[Callable[[httpx.Request], httpx.Response]] = []
    gateway = harness.gateway_with(transport=httpx.MockTransport(lambda r: current[-1](r)))
    outcome: dict[str, Any] = {}
    try:
        for name, handler in handlers.items():
            current.append(handler)
            with pytest.raises(GatewayError) as caught:
                await gateway.cancel("pay-x", amount=1, reason="x", current_cancellable_amount=1)
            outcome[name] = caught.value
    finally:
        await gateway.aclose()
    assert isinstance(outcome["refuse"], GatewayUnavailable)
    assert isinstance(outcome["500"], GatewayUnavailable)
    assert isinstance(outcome["pg"], PortOneRejectedError)
    assert not isinstance(outcome["pg"], GatewayUnavailable)
    assert outcome["pg"].portone_type == "PG_PROVIDER"
    assert "X1" in outcome["pg"].detail


@pytest.mark.parametrize("redis", ["server", "embedded"])
async def test_state_lives_in_the_platform_redis(
    redis: str,
    sqlite_url: str,
    redis_available: str,
    make_harness: Callable[[Settings], Any],
) -> None:
    """The embedded default (fakeredis with Lua) runs the same store code as a Redis server."""
    await _flush_redis(redis_available)
    settings = fake_settings(sqlite_url, redis_url="" if redis == "embedded" else redis_available)
    harness: Harness = await make_harness(settings)
    await harness.paid("pay-redis", 4_000)
    await harness.fake.set_faults(duplicate=2)
    cancel = await harness.gateway.cancel(
        "pay-redis", amount=4_000, reason="all", current_cancellable_amount=4_000
    )
    assert cancel.amount == 4_000
    keys = [key async for key in harness.app.state.platform.redis.scan_iter("fake-portone:*")]
    assert keys
    assert all(key.startswith("fake-portone:") for key in keys)


async def test_two_app_instances_share_the_fake_state(
    portone_settings: Settings, make_harness: Callable[[Settings], Any]
) -> None:
    """Two worker processes (here: two app instances) see the same payments and faults."""
    first: Harness = await make_harness(portone_settings)
    second: Harness = await make_harness(portone_settings)
    auth = {"Authorization": f"PortOne {API_SECRET}"}
    registered = await first.client.post(
        "/fake-portone/payments/pay-shared/pre-register", json={"totalAmount": 6_000}, headers=auth
    )
    assert registered.status_code == 200
    await second.approve("pay-shared")
    seen_by_first = await first.client.get("/fake-portone/payments/pay-shared", headers=auth)
    assert seen_by_first.json()["status"] == "PAID"
    await first.fake.set_faults(http_502=1)
    with pytest.raises(GatewayUnavailable):
        await second.gateway.get_payment("pay-shared")


def test_gateway_refuses_a_webhook_secret_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        PortOneGateway(api_secret=API_SECRET, base_url=FAKE_BASE, webhook_secret="whsec_*not*")
    with pytest.raises(ValueError, match="empty"):
        PortOneGateway(api_secret=API_SECRET, base_url=FAKE_BASE, webhook_secret="")
    assert WEBHOOK_SECRET.startswith("whsec_")


async def test_the_app_wires_its_adapter_to_the_fake_in_process(harness: Harness) -> None:
    """No server listens at ``public_base_url`` (http://testserver): the adapter the payment
    context gets talks to the mounted fake through ``FakePortOne.transport()``."""
    wired = harness.app.state.platform.services["payment.gateway"]
    assert isinstance(wired, PortOneGateway)
    await wired.pre_register("pay-wired", amount=3_000)
    await harness.approve("pay-wired")
    seen = await wired.get_payment("pay-wired")
    assert seen is not None
    assert (seen.status, seen.paid_amount) == (GatewayStatus.PAID, 3_000)
    assert harness.settings.portone_base_url == FAKE_BASE
