"""The official SDK, exactly as shipped (its own httpx client, real HTTP), against the fake: every
answer it needs arrives and deserializes into the typed class, and serializes back to the very
JSON the fake sent (so the fake sends no field the SDK does not know, with no wrong type)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from portone_server_sdk import PaymentClient
from portone_server_sdk._generated.payment.cancel_payment_response import (
    _deserialize_cancel_payment_response,
    _serialize_cancel_payment_response,
)
from portone_server_sdk._generated.payment.get_all_payments_by_cursor_response import (
    _deserialize_get_all_payments_by_cursor_response,
    _serialize_get_all_payments_by_cursor_response,
)
from portone_server_sdk._generated.payment.payment import (
    _deserialize_payment,
    _serialize_payment,
)
from portone_server_sdk.errors import (
    AlreadyPaidError,
    CancelAmountExceedsCancellableAmountError,
    CancellableAmountConsistencyBrokenError,
    ForbiddenError,
    PaymentAlreadyCancelledError,
    PaymentNotFoundError,
    PaymentNotPaidError,
    UnauthorizedError,
)
from portone_server_sdk.payment import (
    CancelledPayment,
    FailedPayment,
    PaidPayment,
    PartialCancelledPayment,
    ReadyPayment,
    SucceededPaymentCancellation,
)

from haot.fake_portone import FAKE_STORE_ID
from tests.fake_portone.conftest import API_SECRET, LiveServer, roundtrip


def auth(secret: str = API_SECRET) -> dict[str, str]:
    return {"Authorization": f"PortOne {secret}"}


async def raw_payment(live: LiveServer, payment_id: str) -> dict[str, object]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{live.fake_base}/payments/{payment_id}", headers=auth())
    assert response.status_code == 200, response.text
    payment: dict[str, object] = response.json()
    return payment


async def approve(live: LiveServer, payment_id: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{live.fake_base}/checkout/{payment_id}/approve")
    assert response.status_code == 303, response.text


async def test_payment_lifecycle_through_the_official_sdk(live: LiveServer) -> None:
    sdk = live.portone.payment

    await sdk.pre_register_payment_async(payment_id="pay-life", total_amount=50_000, currency="KRW")
    ready = await sdk.get_payment_async(payment_id="pay-life")
    assert isinstance(ready, ReadyPayment)
    assert (ready.id, ready.amount.total, ready.amount.paid, ready.currency) == (
        "pay-life",
        50_000,
        0,
        "KRW",
    )
    roundtrip(await raw_payment(live, "pay-life"), _deserialize_payment, _serialize_payment)

    await approve(live, "pay-life")
    paid = await sdk.get_payment_async(payment_id="pay-life")
    assert isinstance(paid, PaidPayment)
    assert (paid.amount.total, paid.amount.paid, paid.amount.cancelled) == (50_000, 50_000, 0)
    assert paid.transaction_id == ready.transaction_id
    assert datetime.fromisoformat(paid.paid_at) <= datetime.now(UTC)
    roundtrip(await raw_payment(live, "pay-life"), _deserialize_payment, _serialize_payment)

    partial = await sdk.cancel_payment_async(
        payment_id="pay-life", amount=20_000, reason="one night", current_cancellable_amount=50_000
    )
    assert isinstance(partial.cancellation, SucceededPaymentCancellation)
    assert partial.cancellation.total_amount == 20_000
    after_partial = await sdk.get_payment_async(payment_id="pay-life")
    assert isinstance(after_partial, PartialCancelledPayment)
    assert (after_partial.amount.paid, after_partial.amount.cancelled) == (50_000, 20_000)
    assert [c.id for c in after_partial.cancellations] == [partial.cancellation.id]  # type: ignore[union-attr]
    roundtrip(await raw_payment(live, "pay-life"), _deserialize_payment, _serialize_payment)

    with pytest.raises(CancellableAmountConsistencyBrokenError):
        await sdk.cancel_payment_async(
            payment_id="pay-life", amount=1_000, reason="stale", current_cancellable_amount=50_000
        )
    with pytest.raises(CancelAmountExceedsCancellableAmountError):
        await sdk.cancel_payment_async(payment_id="pay-life", amount=30_001, reason="too much")
    unchanged = await sdk.get_payment_async(payment_id="pay-life")
    assert isinstance(unchanged, PartialCancelledPayment)
    assert unchanged.amount.cancelled == 20_000

    rest = await sdk.cancel_payment_async(
        payment_id="pay-life", reason="the rest", current_cancellable_amount=30_000
    )
    assert isinstance(rest.cancellation, SucceededPaymentCancellation)
    assert rest.cancellation.total_amount == 30_000
    cancelled = await sdk.get_payment_async(payment_id="pay-life")
    assert isinstance(cancelled, CancelledPayment)
    assert (cancelled.amount.paid, cancelled.amount.cancelled) == (50_000, 50_000)
    assert len(cancelled.cancellations) == 2
    roundtrip(await raw_payment(live, "pay-life"), _deserialize_payment, _serialize_payment)

    with pytest.raises(PaymentAlreadyCancelledError):
        await sdk.cancel_payment_async(payment_id="pay-life", reason="again")


async def test_cancel_answer_deserializes_exactly(live: LiveServer) -> None:
    sdk = live.payment
    await sdk.pre_register_payment_async(payment_id="pay-raw-cancel", total_amount=9_000)
    await approve(live, "pay-raw-cancel")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{live.fake_base}/payments/pay-raw-cancel/cancel",
            headers=auth(),
            json={"amount": 4_000, "reason": "partial", "currentCancellableAmount": 9_000},
        )
    assert response.status_code == 200, response.text
    parsed = roundtrip(
        response.json(), _deserialize_cancel_payment_response, _serialize_cancel_payment_response
    )
    assert isinstance(parsed.cancellation, SucceededPaymentCancellation)


async def test_declined_payment_reads_as_failed(live: LiveServer) -> None:
    sdk = live.payment
    await sdk.pre_register_payment_async(payment_id="pay-declined", total_amount=7_000)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{live.fake_base}/checkout/pay-declined/decline")
    assert response.status_code == 303
    failed = await sdk.get_payment_async(payment_id="pay-declined")
    assert isinstance(failed, FailedPayment)
    assert failed.failure.pg_code == "FAKE_DECLINED"
    roundtrip(await raw_payment(live, "pay-declined"), _deserialize_payment, _serialize_payment)
    with pytest.raises(PaymentNotPaidError):
        await sdk.cancel_payment_async(payment_id="pay-declined", reason="nothing to cancel")


async def test_errors_arrive_as_the_sdk_error_types(live: LiveServer) -> None:
    sdk = live.payment
    with pytest.raises(PaymentNotFoundError):
        await sdk.get_payment_async(payment_id="pay-unknown")
    with pytest.raises(PaymentNotFoundError):
        await sdk.cancel_payment_async(payment_id="pay-unknown", reason="x")

    await sdk.pre_register_payment_async(payment_id="pay-twice", total_amount=1_000)
    await sdk.pre_register_payment_async(payment_id="pay-twice", total_amount=1_500)  # idempotent
    ready = await sdk.get_payment_async(payment_id="pay-twice")
    assert isinstance(ready, ReadyPayment)
    assert ready.amount.total == 1_500
    with pytest.raises(PaymentNotPaidError):
        await sdk.cancel_payment_async(payment_id="pay-twice", reason="not paid yet")
    await approve(live, "pay-twice")
    with pytest.raises(AlreadyPaidError):
        await sdk.pre_register_payment_async(payment_id="pay-twice", total_amount=1_000)

    wrong = PaymentClient(secret="not-the-secret", base_url=live.fake_base)
    with pytest.raises(UnauthorizedError):
        await wrong.get_payment_async(payment_id="pay-twice")
    with pytest.raises(UnauthorizedError):
        await wrong.pre_register_payment_async(payment_id="pay-new", total_amount=1_000)

    other_store = PaymentClient(secret=API_SECRET, base_url=live.fake_base, store_id="store-other")
    with pytest.raises(ForbiddenError):
        await other_store.get_payment_async(payment_id="pay-twice")
    async with httpx.AsyncClient() as client:
        own_store = await client.get(
            f"{live.fake_base}/payments/pay-twice",
            params={"storeId": FAKE_STORE_ID},
            headers=auth(),
        )
    assert own_store.status_code == 200
    assert own_store.json()["storeId"] == FAKE_STORE_ID


async def test_login_via_api_secret_gives_a_usable_bearer_token(live: LiveServer) -> None:
    client = live.portone
    tokens = await client.auth.login_via_api_secret_async(api_secret=API_SECRET)
    assert tokens.access_token
    assert tokens.refresh_token
    await client.payment.pre_register_payment_async(payment_id="pay-bearer", total_amount=2_000)
    async with httpx.AsyncClient() as http:
        ok = await http.get(
            f"{live.fake_base}/payments/pay-bearer",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        forged = await http.get(
            f"{live.fake_base}/payments/pay-bearer", headers={"Authorization": "Bearer forged"}
        )
        missing = await http.get(f"{live.fake_base}/payments/pay-bearer")
    assert ok.status_code == 200
    assert forged.status_code == missing.status_code == 401
    assert forged.json()["type"] == "UNAUTHORIZED"
    with pytest.raises(UnauthorizedError):
        await client.auth.login_via_api_secret_async(api_secret="wrong")


async def test_list_by_cursor_pages_in_creation_order(live: LiveServer) -> None:
    sdk = live.payment
    before = datetime.now(UTC)
    ids = [f"pay-list-{i}" for i in range(5)]
    for payment_id in ids:
        await sdk.pre_register_payment_async(payment_id=payment_id, total_amount=1_000)
    await approve(live, ids[1])
    after = datetime.now(UTC) + timedelta(seconds=1)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    for _ in range(10):  # bounded: a cursor that does not advance fails instead of hanging
        page = await sdk.get_all_payments_by_cursor_async(
            from_=before.isoformat(), until=after.isoformat(), cursor=cursor, size=2
        )
        if not page.items:
            break
        pages += 1
        assert len(page.items) <= 2
        seen += [item.payment.id for item in page.items]  # type: ignore[union-attr]
        cursor = page.items[-1].cursor
    assert seen == ids
    assert pages == 3

    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{live.fake_base}/payments-by-cursor",
            headers=auth(),
            params={"requestBody": f'{{"from": "{before.isoformat()}", "size": 10}}'},
        )
    parsed = roundtrip(
        response.json(),
        _deserialize_get_all_payments_by_cursor_response,
        _serialize_get_all_payments_by_cursor_response,
    )
    assert isinstance(parsed.items[1].payment, PaidPayment)
    assert isinstance(parsed.items[0].payment, ReadyPayment)

    later = await sdk.get_all_payments_by_cursor_async(from_=after.isoformat())
    assert later.items == []
    earlier = await sdk.get_all_payments_by_cursor_async(
        from_=(before - timedelta(hours=1)).isoformat(), until=before.isoformat()
    )
    assert earlier.items == []
