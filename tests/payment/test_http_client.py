"""The payment context served alone (ADR 0018): the reservation saga's payment client over real
HTTP answers as the in-process one does, raises the same error for a reservation given up, creating
the payment again for the same reservation answers the same payment and creates none, and the
internal route takes only the reservation context's service token (never a user's); the
all-in-one app serves none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from haot.payment.client import ERRORS, HttpPaymentClient, InProcessPaymentClient
from haot.payment.models import Payment
from haot.payment.service import PaymentRefused
from haot.platform.auth import Role
from haot.platform.container import Platform
from haot.platform.errors import HaotError
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import Settings
from haot.reservation.ports import PaymentPort
from tests.support.gateway import InMemoryGateway
from tests.support.server import context_alone, service_client


@pytest.fixture
async def payment_service(settings: Settings) -> AsyncIterator[tuple[str, Platform]]:
    """``haot serve --context payment``: the payment context alone, on a loopback port."""
    async with context_alone(settings, "payment", gateway=InMemoryGateway()) as served:
        yield served


def http_client(base: str, settings: Settings, caller: str = "reservation") -> ServiceClient:
    return service_client(base, settings, "payment", ERRORS, caller=caller)


async def payments_of(platform: Platform, reservation_id: uuid.UUID) -> list[tuple[str, int, str]]:
    """(id, amount, status) of every payment recorded for the reservation."""
    async with platform.databases.sessions_for("payment")() as session:
        rows = await session.scalars(
            select(Payment).where(Payment.reservation_id == reservation_id)
        )
        return [(row.id, row.amount, row.status) for row in rows]


async def give_up(platform: Platform, reservation_id: uuid.UUID) -> None:
    """What the payment context does when the reservation fails or expires (its consumer)."""
    uow = platform.uow_factory("payment")
    async with uow() as unit:
        await platform.services["payment"].void(unit, reservation_id, "reservation expired")
        await unit.commit()


async def refusal(call: Awaitable[object]) -> type[HaotError]:
    """The class of the error a call is refused with."""
    try:
        await call
    except HaotError as exc:
        return type(exc)
    raise AssertionError("not refused")


async def test_the_http_client_answers_as_the_in_process_one(
    payment_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = payment_service
    in_process: PaymentPort = InProcessPaymentClient(platform.services["payment"])
    service = http_client(base, settings)
    over_http: PaymentPort = HttpPaymentClient(service)
    guest = uuid.uuid4()
    reservation = uuid.uuid4()
    order: dict[str, Any] = {
        "reservation_id": reservation,
        "user_id": guest,
        "amount": 180_000,
        "order_name": "Harbor Stay · Double",
    }
    try:
        payment_id, checkout_url = await over_http.create_payment(**order)
        assert payment_id.startswith("pay_")
        assert checkout_url.endswith(f"/payments/{payment_id}/checkout")
        # A retry for the same reservation: the same payment, none created.
        assert await over_http.create_payment(**order) == (payment_id, checkout_url)
        assert await in_process.create_payment(**order) == (payment_id, checkout_url)
        # ... even if it asked for another amount: the payment created first stands.
        assert await over_http.create_payment(**{**order, "amount": 1}) == (
            payment_id,
            checkout_url,
        )
        assert await payments_of(platform, reservation) == [(payment_id, 180_000, "READY")]

        other = {**order, "reservation_id": uuid.uuid4()}
        created = await in_process.create_payment(**other)
        assert created[0] != payment_id
        assert await over_http.create_payment(**other) == created
    finally:
        await service.aclose()


async def test_a_reservation_given_up_gets_no_payment_either_way(
    payment_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = payment_service
    in_process: PaymentPort = InProcessPaymentClient(platform.services["payment"])
    service = http_client(base, settings)
    over_http: PaymentPort = HttpPaymentClient(service)
    before, after = uuid.uuid4(), uuid.uuid4()
    orders: dict[uuid.UUID, dict[str, Any]] = {
        reservation: {
            "reservation_id": reservation,
            "user_id": uuid.uuid4(),
            "amount": 90_000,
            "order_name": "Harbor Stay · Double",
        }
        for reservation in (before, after)
    }
    try:
        await give_up(platform, before)  # before the saga asked for its payment (a fence)
        payment_id, _ = await over_http.create_payment(**orders[after])
        await give_up(platform, after)  # after: its payment is voided
        for reservation in (before, after):
            for client in (over_http, in_process):
                created = client.create_payment(**orders[reservation])
                assert await refusal(created) is PaymentRefused
        assert [status for *_, status in await payments_of(platform, before)] == ["FAILED"]
        assert await payments_of(platform, after) == [(payment_id, 90_000, "FAILED")]
    finally:
        await service.aclose()


async def test_internal_routes_take_only_the_callers_they_name(
    payment_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = payment_service
    path = "/internal/v1/payment/payments"
    body: dict[str, Any] = {
        "reservation_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "amount": 1000,
        "order_name": "Harbor Stay · Double",
    }
    admin = platform.signer.issue(uuid.uuid4(), Role.ADMIN).token
    coupon = ServiceTokens(settings.service_token_secret, caller="coupon").for_callee("payment")
    reservation = ServiceTokens(settings.service_token_secret, caller="reservation")
    wrong_callee = reservation.for_callee("point")
    async with httpx.AsyncClient(base_url=base) as raw:
        assert (await raw.post(path, json=body)).status_code == 401
        for token, status in ((admin, 401), (wrong_callee, 401), (coupon, 403)):
            answer = await raw.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == status, answer.text
        own = {"Authorization": f"Bearer {reservation.for_callee('payment')}"}
        answer = await raw.post(path, json={**body, "currency": "USD"}, headers=own)
        assert answer.status_code == 422, answer.text  # unknown fields are refused
    assert await payments_of(platform, uuid.UUID(body["reservation_id"])) == []


async def test_the_all_in_one_app_serves_no_internal_route(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    token = ServiceTokens(settings.service_token_secret, caller="reservation").for_callee("payment")
    answer = await app_client.post(
        "/internal/v1/payment/payments",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "reservation_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "amount": 1000,
            "order_name": "Harbor Stay · Double",
        },
    )
    assert answer.status_code == 404
