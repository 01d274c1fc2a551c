"""The coupon context served alone (ADR 0018): the reservation saga's coupon client over real HTTP
answers as the in-process one does, raises the same errors, a repeated reserve for the same
reservation changes nothing, and the internal routes take only the reservation context's service
token (never a user's); the all-in-one app serves none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from haot.coupon.client import ERRORS, HttpCouponClient, InProcessCouponClient
from haot.coupon.models import UserCoupon
from haot.coupon.schemas import CouponCreate
from haot.coupon.service import CouponNotUsable
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.errors import HaotError
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import Settings
from haot.reservation.ports import CouponPort
from tests.support.server import context_alone, service_client


@pytest.fixture
async def coupon_service(settings: Settings) -> AsyncIterator[tuple[str, Platform]]:
    """``haot serve --context coupon``: the coupon context alone, on a loopback port."""
    async with context_alone(settings, "coupon") as served:
        yield served


def http_client(base: str, settings: Settings, caller: str = "reservation") -> ServiceClient:
    return service_client(base, settings, "coupon", ERRORS, caller=caller)


async def give_coupon(platform: Platform, guest: uuid.UUID, **terms: Any) -> uuid.UUID:
    """A template with ``terms`` (10 % off, at most 30,000 won, by default) issued to ``guest``:
    the user coupon id."""
    coupons = platform.services["coupon"]
    now = utcnow()
    template = await coupons.create_coupon(
        CouponCreate(
            **{
                "name": "Stay coupon",
                "discount_type": "PERCENT",
                "discount_value": 10,
                "max_discount": 30_000,
                "valid_from": now - timedelta(days=1),
                "valid_to": now + timedelta(days=90),
                **terms,
            }
        )
    )
    issued = await coupons.issue(template.id, [guest])
    return uuid.UUID(str(issued.issued[0]))


async def coupon_row(platform: Platform, user_coupon_id: uuid.UUID) -> tuple[str, uuid.UUID | None]:
    async with platform.databases.sessions_for("coupon")() as session:
        row = await session.get(UserCoupon, user_coupon_id)
        assert row is not None
        return row.status, row.reservation_id


async def refusal(call: Awaitable[object]) -> type[HaotError]:
    """The class of the error a call is refused with."""
    try:
        await call
    except HaotError as exc:
        return type(exc)
    raise AssertionError("not refused")


async def test_the_http_client_answers_as_the_in_process_one(
    coupon_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = coupon_service
    in_process: CouponPort = InProcessCouponClient(platform.services["coupon"])
    service = http_client(base, settings)
    over_http: CouponPort = HttpCouponClient(service)
    guest, lodging = uuid.uuid4(), uuid.uuid4()
    coupon = await give_coupon(platform, guest)
    order = {"user_id": guest, "user_coupon_id": coupon, "lodging_id": lodging}
    try:
        for amount, off in ((200_000, 20_000), (500_000, 30_000), (0, 0)):
            assert await over_http.discount_for(**order, order_amount=amount) == off
            assert await in_process.discount_for(**order, order_amount=amount) == off
        assert await coupon_row(platform, coupon) == ("ISSUED", None)

        reservation = uuid.uuid4()
        booking: dict[str, Any] = {**order, "reservation_id": reservation, "order_amount": 200_000}
        assert await over_http.reserve(**booking) == 20_000
        # A retry for the same reservation: the same answer, nothing changes.
        assert await over_http.reserve(**booking) == 20_000
        assert await in_process.reserve(**booking) == 20_000
        assert await coupon_row(platform, coupon) == ("RESERVED", reservation)

        # Reserved: neither a quote nor another reservation may use it.
        for client in (over_http, in_process):
            checked = client.discount_for(**order, order_amount=200_000)
            assert await refusal(checked) is CouponNotUsable
            taken = client.reserve(**order, reservation_id=uuid.uuid4(), order_amount=200_000)
            assert await refusal(taken) is CouponNotUsable
        assert await coupon_row(platform, coupon) == ("RESERVED", reservation)
    finally:
        await service.aclose()


async def test_refusals_are_the_in_process_clients(
    coupon_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = coupon_service
    in_process: CouponPort = InProcessCouponClient(platform.services["coupon"])
    service = http_client(base, settings)
    over_http: CouponPort = HttpCouponClient(service)
    guest, lodging = uuid.uuid4(), uuid.uuid4()
    plain = await give_coupon(platform, guest)
    big_orders = await give_coupon(platform, guest, min_order_amount=300_000)
    elsewhere = await give_coupon(platform, guest, lodging_id=uuid.uuid4())
    refused = [
        {"user_id": uuid.uuid4(), "user_coupon_id": plain},  # someone else's
        {"user_id": guest, "user_coupon_id": uuid.uuid4()},  # no such coupon
        {"user_id": guest, "user_coupon_id": big_orders},  # under the minimum order
        {"user_id": guest, "user_coupon_id": elsewhere},  # for another lodging
    ]
    try:
        for order in refused:
            for client in (over_http, in_process):
                checked = client.discount_for(**order, lodging_id=lodging, order_amount=200_000)
                assert await refusal(checked) is CouponNotUsable, order
                reserved = client.reserve(
                    **order, reservation_id=uuid.uuid4(), lodging_id=lodging, order_amount=200_000
                )
                assert await refusal(reserved) is CouponNotUsable, order
        for coupon in (plain, big_orders, elsewhere):
            assert await coupon_row(platform, coupon) == ("ISSUED", None)
    finally:
        await service.aclose()


async def test_internal_routes_take_only_the_callers_they_name(
    coupon_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = coupon_service
    coupon = uuid.uuid4()
    discount = f"/internal/v1/coupon/user-coupons/{coupon}/discount"
    order: dict[str, Any] = {
        "user_id": str(uuid.uuid4()),
        "lodging_id": str(uuid.uuid4()),
        "order_amount": 1000,
    }
    reserve = f"/internal/v1/coupon/user-coupons/{coupon}/reserve"
    body = {**order, "reservation_id": str(uuid.uuid4())}
    admin = platform.signer.issue(uuid.uuid4(), Role.ADMIN).token
    point = ServiceTokens(settings.service_token_secret, caller="point").for_callee("coupon")
    reservation = ServiceTokens(settings.service_token_secret, caller="reservation")
    wrong_callee = reservation.for_callee("payment")
    async with httpx.AsyncClient(base_url=base) as raw:
        assert (await raw.get(discount, params=order)).status_code == 401
        assert (await raw.post(reserve, json=body)).status_code == 401
        for token, status in ((admin, 401), (wrong_callee, 401), (point, 403)):
            headers = {"Authorization": f"Bearer {token}"}
            answer = await raw.get(discount, params=order, headers=headers)
            assert answer.status_code == status, answer.text
            answer = await raw.post(reserve, json=body, headers=headers)
            assert answer.status_code == status, answer.text
        own = {"Authorization": f"Bearer {reservation.for_callee('coupon')}"}
        answer = await raw.post(reserve, json=body, headers=own)
        assert answer.status_code == 422, answer.text  # through the guard: no such coupon
        assert answer.json()["code"] == "coupon_not_usable"
        answer = await raw.post(reserve, json={**body, "discount": 99}, headers=own)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] != "coupon_not_usable"  # unknown fields are refused first


async def test_the_all_in_one_app_serves_no_internal_route(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    token = ServiceTokens(settings.service_token_secret, caller="reservation").for_callee("coupon")
    answer = await app_client.post(
        f"/internal/v1/coupon/user-coupons/{uuid.uuid4()}/reserve",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "user_id": str(uuid.uuid4()),
            "reservation_id": str(uuid.uuid4()),
            "lodging_id": str(uuid.uuid4()),
            "order_amount": 1000,
        },
    )
    assert answer.status_code == 404
