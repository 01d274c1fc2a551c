"""HTTP steps shared by the API-level reservation tests (``api_world``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from haot.platform.auth import Principal
from tests.reservation.conftest import World
from tests.support.gateway import pay_at_checkout


def stay_body(
    world: World, start: int, nights: int = 1, room_type_id: uuid.UUID | None = None
) -> dict[str, Any]:
    check_in = world.today + timedelta(days=start)
    return {
        "room_type_id": str(room_type_id or world.room_type_id),
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=nights)).isoformat(),
        "guests": 2,
    }


async def book(
    world: World,
    guest: Principal,
    start: int,
    nights: int = 1,
    room_type_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    response = await world.http.post(
        "/api/v1/reservations",
        json=stay_body(world, start, nights, room_type_id),
        headers=world.auth(guest),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def pay(world: World, guest: Principal, created: dict[str, Any]) -> None:
    """The guest pays at the gateway and comes back; the reservation is then CONFIRMED."""
    await pay_at_checkout(world.platform, world.gateway, created["payment_id"])
    response = await world.http.post(
        f"/api/v1/payments/{created['payment_id']}/complete", headers=world.auth(guest)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PAID"
    await world.settle()
    assert (await read(world, guest, created["id"]))["status"] == "CONFIRMED"


async def booked_and_paid(
    world: World,
    guest: Principal,
    start: int,
    nights: int = 1,
    room_type_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    created = await book(world, guest, start, nights, room_type_id)
    await pay(world, guest, created)
    return created


async def read(world: World, who: Principal, reservation_id: str) -> dict[str, Any]:
    response = await world.http.get(
        f"/api/v1/reservations/{reservation_id}", headers=world.auth(who)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def problem(response: Any) -> str:
    """The problem+json ``code`` of an error answer."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    code: str = response.json()["code"]
    return code
