"""Coupons in the booking saga over HTTP (the real app on PostgreSQL, in-memory payment gateway):
the quote's discount, reservation → RESERVED, confirmation → USED, expiry or cancellation → ISSUED
again, and one coupon raced by two reservations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from haot.app import create_app
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.coupon.conftest import problem
from tests.reservation.conftest import World, open_lodging
from tests.support.gateway import InMemoryGateway, pay_at_checkout

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"])]

NIGHT = 100_000  # the lodging's price per night


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    gateway = InMemoryGateway()
    app = create_app(settings, gateway=gateway)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        platform: Platform = app.state.platform
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        today = seoul_today()
        lodging_id, room_type_id = await open_lodging(platform, host, today, rooms=1)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield World(platform, gateway, host, room_type_id, lodging_id, today, client)


async def give_coupon(world: World, guest: Principal, **terms: Any) -> str:
    """A template with ``terms`` issued to ``guest``: the user coupon id."""
    admin = world.auth(world.principal(Role.ADMIN))
    now = utcnow()
    body: dict[str, Any] = {
        "name": "Stay coupon",
        "discount_type": "PERCENT",
        "discount_value": 10,
        "min_order_amount": 0,
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_to": (now + timedelta(days=90)).isoformat(),
        **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in terms.items()},
    }
    coupon = await world.http.post("/api/v1/admin/coupons", headers=admin, json=body)
    assert coupon.status_code == 201, coupon.text
    issued = await world.http.post(
        f"/api/v1/admin/coupons/{coupon.json()['id']}/issue",
        headers=admin,
        json={"user_ids": [str(guest.user_id)]},
    )
    assert issued.status_code == 201, issued.text
    return str(issued.json()["issued"][0])


def stay(world: World, user_coupon_id: str, *, start: int = 10, nights: int = 2) -> dict[str, Any]:
    check_in = world.today + timedelta(days=start)
    return {
        "room_type_id": str(world.room_type_id),
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=nights)).isoformat(),
        "guests": 2,
        "user_coupon_id": user_coupon_id,
    }


async def coupon_of(world: World, guest: Principal, user_coupon_id: str) -> dict[str, Any]:
    page = await world.http.get("/api/v1/coupons", headers=world.auth(guest))
    assert page.status_code == 200
    (found,) = [c for c in page.json()["items"] if c["id"] == user_coupon_id]
    return dict(found)


async def reserve(world: World, guest: Principal, body: dict[str, Any]) -> httpx.Response:
    return await world.http.post("/api/v1/reservations", headers=world.auth(guest), json=body)


async def reservation(world: World, guest: Principal, reservation_id: str) -> dict[str, Any]:
    answer = await world.http.get(
        f"/api/v1/reservations/{reservation_id}", headers=world.auth(guest)
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("terms", "nights", "discount"),
    [
        pytest.param(
            {"discount_value": 10, "max_discount": 15_000}, 2, 15_000, id="percent capped"
        ),
        pytest.param(
            {"discount_value": 10, "max_discount": 50_000}, 2, 20_000, id="percent under cap"
        ),
        pytest.param({"discount_value": 15}, 1, 15_000, id="percent without cap"),
        pytest.param({"discount_type": "FIXED", "discount_value": 7_000}, 2, 7_000, id="fixed"),
        pytest.param(
            {"discount_type": "FIXED", "discount_value": 250_000},
            2,
            200_000,
            id="fixed above order",
        ),
        pytest.param({"min_order_amount": 200_000}, 2, 20_000, id="min order met exactly"),
    ],
)
async def test_quote_gives_the_coupon_discount(
    world: World, terms: dict[str, Any], nights: int, discount: int
) -> None:
    guest = world.guest()
    user_coupon_id = await give_coupon(world, guest, **terms)
    quote = await world.http.post(
        "/api/v1/reservations/quote",
        headers=world.auth(guest),
        json=stay(world, user_coupon_id, nights=nights),
    )
    assert quote.status_code == 200, quote.text
    body = quote.json()
    subtotal = NIGHT * nights
    assert (body["subtotal"], body["coupon_discount"], body["amount"]) == (
        subtotal,
        discount,
        subtotal - discount,
    )
    assert (await coupon_of(world, guest, user_coupon_id))[
        "status"
    ] == "ISSUED"  # quote holds nothing


async def test_quote_refuses_coupons_that_do_not_apply(world: World) -> None:
    guest = world.guest()
    other_lodging, _ = await world.add_lodging(world.principal(Role.HOST))
    refused = {
        "min order not met": await give_coupon(world, guest, min_order_amount=200_001),
        "other lodging": await give_coupon(world, guest, lodging_id=other_lodging),
        "expired": await give_coupon(
            world, guest, valid_from=(utcnow() - timedelta(days=10)).isoformat()
        ),
        "deactivated": await give_coupon(world, guest),
        "someone else's": await give_coupon(world, world.guest()),
        "no such coupon": str(uuid.uuid4()),
    }
    admin = world.auth(world.principal(Role.ADMIN))
    for why, change in [
        ("expired", {"valid_to": (utcnow() - timedelta(days=1)).isoformat()}),
        ("deactivated", {"active": False}),
    ]:
        template = (await coupon_of(world, guest, refused[why]))["coupon"]["id"]
        patched = await world.http.patch(
            f"/api/v1/admin/coupons/{template}", headers=admin, json=change
        )
        assert patched.status_code == 200, patched.text
    for why, user_coupon_id in refused.items():
        quote = await world.http.post(
            "/api/v1/reservations/quote",
            headers=world.auth(guest),
            json=stay(world, user_coupon_id),
        )
        assert problem(quote) == (422, "coupon_not_usable"), why
        booked = await reserve(world, guest, stay(world, user_coupon_id))
        assert problem(booked) == (422, "coupon_not_usable"), why
    this_lodging = await give_coupon(world, guest, lodging_id=world.lodging_id)
    quote = await world.http.post(
        "/api/v1/reservations/quote", headers=world.auth(guest), json=stay(world, this_lodging)
    )
    assert quote.status_code == 200
    assert quote.json()["coupon_discount"] == 20_000


async def test_coupon_is_reserved_then_used_and_given_back_on_cancellation(world: World) -> None:
    guest = world.guest()
    user_coupon_id = await give_coupon(world, guest, discount_type="FIXED", discount_value=30_000)
    created = await reserve(world, guest, stay(world, user_coupon_id))
    assert created.status_code == 201, created.text
    assert created.json()["amount"] == 2 * NIGHT - 30_000
    held = await coupon_of(world, guest, user_coupon_id)
    assert (held["status"], held["reservation_id"]) == ("RESERVED", created.json()["id"])
    read = await reservation(world, guest, created.json()["id"])
    assert (read["coupon_discount"], read["user_coupon_id"]) == (30_000, user_coupon_id)
    # A reserved coupon cannot be used twice.
    second = await reserve(world, guest, stay(world, user_coupon_id, start=20))
    assert problem(second) == (422, "coupon_not_usable")

    await pay_at_checkout(world.platform, world.gateway, created.json()["payment_id"])
    paid = await world.http.post(
        f"/api/v1/payments/{created.json()['payment_id']}/complete", headers=world.auth(guest)
    )
    assert paid.status_code == 200, paid.text
    await world.settle()
    assert (await reservation(world, guest, created.json()["id"]))["status"] == "CONFIRMED"
    used = await coupon_of(world, guest, user_coupon_id)
    assert used["status"] == "USED"
    assert used["used_at"] is not None
    listed = await world.http.get(
        "/api/v1/coupons", headers=world.auth(guest), params={"status": "USED"}
    )
    assert [c["id"] for c in listed.json()["items"]] == [user_coupon_id]

    cancelled = await world.http.post(
        f"/api/v1/reservations/{created.json()['id']}/cancel", headers=world.auth(guest), json={}
    )
    assert cancelled.status_code == 200, cancelled.text
    await world.settle()
    back = await coupon_of(world, guest, user_coupon_id)
    assert (back["status"], back["reservation_id"], back["used_at"]) == ("ISSUED", None, None)


async def test_coupon_comes_back_when_the_hold_expires_or_is_cancelled(world: World) -> None:
    guest = world.guest()
    user_coupon_id = await give_coupon(world, guest)
    first = (await reserve(world, guest, stay(world, user_coupon_id))).json()
    assert (await coupon_of(world, guest, user_coupon_id))["status"] == "RESERVED"
    late = (utcnow() + timedelta(hours=1)).isoformat()
    ran = await world.http.post(
        "/api/v1/admin/jobs/expire-holds/run",
        headers=world.auth(world.principal(Role.ADMIN)),
        params={"as_of": late},
    )
    assert ran.status_code == 200, ran.text
    await world.settle()
    assert (await reservation(world, guest, first["id"]))["status"] == "EXPIRED"
    assert (await coupon_of(world, guest, user_coupon_id))["status"] == "ISSUED"

    second = await reserve(world, guest, stay(world, user_coupon_id, start=20))
    assert second.status_code == 201, second.text
    assert (await coupon_of(world, guest, user_coupon_id))["status"] == "RESERVED"
    cancelled = await world.http.post(
        f"/api/v1/reservations/{second.json()['id']}/cancel", headers=world.auth(guest), json={}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    await world.settle()
    assert (await coupon_of(world, guest, user_coupon_id))["status"] == "ISSUED"


async def test_one_coupon_raced_by_two_reservations_goes_to_one(world: World) -> None:
    guest = world.guest()
    for attempt in range(3):  # different nights each round: only the coupon is contended
        user_coupon_id = await give_coupon(
            world, guest, discount_type="FIXED", discount_value=10_000
        )
        answers = await asyncio.gather(
            reserve(world, guest, stay(world, user_coupon_id, start=10 + 6 * attempt)),
            reserve(world, guest, stay(world, user_coupon_id, start=13 + 6 * attempt)),
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 422], [a.text for a in answers]
        (winner,) = [a.json() for a in answers if a.status_code == 201]
        (loser,) = [a for a in answers if a.status_code == 422]
        assert problem(loser) == (422, "coupon_not_usable")
        await world.settle()
        held = await coupon_of(world, guest, user_coupon_id)
        # The loser's failure gives back nothing of the winner's.
        assert (held["status"], held["reservation_id"]) == ("RESERVED", winner["id"])
        assert (await reservation(world, guest, winner["id"]))["coupon_discount"] == 10_000
        # Cancel the winner so the guest stays under the pending-reservations limit.
        cancelled = await world.http.post(
            f"/api/v1/reservations/{winner['id']}/cancel", headers=world.auth(guest), json={}
        )
        assert cancelled.status_code == 200
    await world.settle()
    mine = await world.http.get(
        "/api/v1/reservations", headers=world.auth(guest), params={"size": 100}
    )
    statuses = sorted(r["status"] for r in mine.json()["items"])
    # A loser refused at the reserve step has a FAILED reservation; one refused by the quote
    # check before it (the winner was quicker) has none.
    assert statuses.count("CANCELLED") == 3
    assert set(statuses) <= {"CANCELLED", "FAILED"}, statuses
