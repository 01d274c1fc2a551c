"""Who sees what: reservation and payment lists and reads over HTTP, and Idempotency-Key on
booking."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from haot.platform.auth import Principal, Role
from haot.reservation.schemas import StayRequest
from tests.reservation.conftest import World
from tests.reservation.helpers import book, booked_and_paid, problem, stay_body
from tests.reservation.invariants import assert_consistent


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


async def get_page(world: World, who: Principal, path: str, **params: Any) -> dict[str, Any]:
    response = await world.http.get(path, params=params, headers=world.auth(who))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert page["total"] == len(page["items"]), "tests keep lists on one page"
    return page


@pytest.fixture
async def scene(api_world: World) -> dict[str, Any]:
    """Two guests, two hosts: alice books twice (one paid) with host one, bob once with host
    two."""
    world = api_world
    alice, bob = world.guest(), world.guest()
    other_host = world.principal(Role.HOST)
    other_lodging, other_room_type = await world.add_lodging(other_host)
    a_paid = await booked_and_paid(world, alice, start=10)
    a_pending = await book(world, alice, start=12)
    b_pending = await book(world, bob, start=10, room_type_id=other_room_type)
    return {
        "world": world,
        "alice": alice,
        "bob": bob,
        "other_host": other_host,
        "other_lodging": other_lodging,
        "a_paid": a_paid,
        "a_pending": a_pending,
        "b_pending": b_pending,
    }


async def test_guests_list_and_read_only_their_own_reservations(scene: dict[str, Any]) -> None:
    world: World = scene["world"]
    alice, bob = scene["alice"], scene["bob"]
    mine = await get_page(world, alice, "/api/v1/reservations")
    assert ids(mine) == {scene["a_paid"]["id"], scene["a_pending"]["id"]}
    assert all(item["user_id"] == str(alice.user_id) for item in mine["items"])
    confirmed = await get_page(world, alice, "/api/v1/reservations", status="CONFIRMED")
    assert ids(confirmed) == {scene["a_paid"]["id"]}
    assert ids(await get_page(world, bob, "/api/v1/reservations")) == {scene["b_pending"]["id"]}

    theirs = await world.http.get(
        f"/api/v1/reservations/{scene['b_pending']['id']}", headers=world.auth(alice)
    )
    assert theirs.status_code == 404
    assert problem(theirs) == "reservation_not_found"
    for missing in (str(uuid.uuid4()), "not-an-id"):
        response = await world.http.get(
            f"/api/v1/reservations/{missing}", headers=world.auth(alice)
        )
        assert response.status_code == 404
    anonymous = await world.http.get("/api/v1/reservations")
    assert anonymous.status_code == 401


async def test_hosts_see_reservations_of_their_own_lodgings_only(scene: dict[str, Any]) -> None:
    world: World = scene["world"]
    host_one = await get_page(world, world.host, "/api/v1/host/reservations")
    assert ids(host_one) == {scene["a_paid"]["id"], scene["a_pending"]["id"]}
    host_two = await get_page(world, scene["other_host"], "/api/v1/host/reservations")
    assert ids(host_two) == {scene["b_pending"]["id"]}
    # Filtering by someone else's lodging still shows only one's own.
    filtered = await get_page(
        world, world.host, "/api/v1/host/reservations", lodging_id=str(scene["other_lodging"])
    )
    assert filtered["items"] == []
    # A host reads a reservation of their lodging; another host gets 404.
    own = await world.http.get(
        f"/api/v1/reservations/{scene['a_paid']['id']}", headers=world.auth(world.host)
    )
    assert own.status_code == 200
    other = await world.http.get(
        f"/api/v1/reservations/{scene['a_paid']['id']}", headers=world.auth(scene["other_host"])
    )
    assert other.status_code == 404
    guest_on_host_route = await world.http.get(
        "/api/v1/host/reservations", headers=world.auth(scene["alice"])
    )
    assert guest_on_host_route.status_code == 403


async def test_admin_lists_every_reservation_with_filters(scene: dict[str, Any]) -> None:
    world: World = scene["world"]
    admin = world.principal(Role.ADMIN)
    path = "/api/v1/admin/reservations"
    everything = {scene[k]["id"] for k in ("a_paid", "a_pending", "b_pending")}
    assert ids(await get_page(world, admin, path)) == everything
    assert ids(await get_page(world, admin, path, status="PENDING")) == {
        scene["a_pending"]["id"],
        scene["b_pending"]["id"],
    }
    assert ids(await get_page(world, admin, path, user_id=str(scene["alice"].user_id))) == {
        scene["a_paid"]["id"],
        scene["a_pending"]["id"],
    }
    assert ids(await get_page(world, admin, path, host_id=str(scene["other_host"].user_id))) == {
        scene["b_pending"]["id"]
    }
    assert ids(await get_page(world, admin, path, lodging_id=str(world.lodging_id))) == {
        scene["a_paid"]["id"],
        scene["a_pending"]["id"],
    }
    assert ids(
        await get_page(world, admin, path, user_id=str(scene["alice"].user_id), status="CONFIRMED")
    ) == {scene["a_paid"]["id"]}
    paged = await world.http.get(path, params={"size": 1, "page": 2}, headers=world.auth(admin))
    assert paged.status_code == 200
    assert (paged.json()["total"], len(paged.json()["items"])) == (3, 1)
    for who in (scene["alice"], world.host):
        response = await world.http.get(path, headers=world.auth(who))
        assert response.status_code == 403
    bad = await world.http.get(path, params={"status": "BOGUS"}, headers=world.auth(admin))
    assert bad.status_code == 422


async def test_payments_are_listed_and_read_by_their_owner_only(scene: dict[str, Any]) -> None:
    world: World = scene["world"]
    alice, bob = scene["alice"], scene["bob"]
    alice_payments = {scene["a_paid"]["payment_id"], scene["a_pending"]["payment_id"]}
    assert ids(await get_page(world, alice, "/api/v1/payments")) == alice_payments
    assert ids(await get_page(world, alice, "/api/v1/payments", status="PAID")) == {
        scene["a_paid"]["payment_id"]
    }
    assert ids(await get_page(world, bob, "/api/v1/payments")) == {scene["b_pending"]["payment_id"]}

    own = await world.http.get(
        f"/api/v1/payments/{scene['a_paid']['payment_id']}", headers=world.auth(alice)
    )
    assert own.status_code == 200
    assert own.json()["status"] == "PAID"
    for payment_id in (scene["b_pending"]["payment_id"], "pay_unknown"):
        response = await world.http.get(f"/api/v1/payments/{payment_id}", headers=world.auth(alice))
        assert response.status_code == 404
        assert problem(response) == "payment_not_found"
    # Completing someone else's payment is 404 too (and changes nothing).
    response = await world.http.post(
        f"/api/v1/payments/{scene['b_pending']['payment_id']}/complete", headers=world.auth(alice)
    )
    assert response.status_code == 404

    admin = world.principal(Role.ADMIN)
    every = await get_page(world, admin, "/api/v1/admin/payments")
    assert ids(every) == alice_payments | {scene["b_pending"]["payment_id"]}
    by_user = await get_page(world, admin, "/api/v1/admin/payments", user_id=str(bob.user_id))
    assert ids(by_user) == {scene["b_pending"]["payment_id"]}
    response = await world.http.get("/api/v1/admin/payments", headers=world.auth(alice))
    assert response.status_code == 403


async def test_same_idempotency_key_twice_books_once(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    headers = world.auth(guest) | {"Idempotency-Key": "book-123"}
    body = stay_body(world, start=10, nights=2)
    first = await world.http.post("/api/v1/reservations", json=body, headers=headers)
    second = await world.http.post("/api/v1/reservations", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert second.json() == first.json()
    other_body = await world.http.post(
        "/api/v1/reservations", json=stay_body(world, start=20), headers=headers
    )
    assert other_body.status_code == 422
    # Another user's identical key is theirs alone.
    stranger = world.guest()
    theirs = await world.http.post(
        "/api/v1/reservations",
        json=stay_body(world, start=30),
        headers=world.auth(stranger) | {"Idempotency-Key": "book-123"},
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]

    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    mine = [r for r in snap.reservations if r.user_id == guest.user_id]
    assert [str(r.id) for r in mine] == [first.json()["id"]]
    assert len([h for h in snap.holds if h.reservation_id == mine[0].id]) == 1
    assert [n.held for n in snap.nights if n.held] == [1, 1, 1]  # 2 nights + the stranger's
    assert len(snap.payments) == 2


async def test_service_level_idempotency_key_returns_the_same_reservation(world: World) -> None:
    """Beneath the HTTP layer too (a retry whose stored answer is gone): one reservation."""
    reservations = world.platform.services["reservation"]
    guest = world.guest()
    request = stay_body(world, start=10, nights=2)
    first = await reservations.create(guest, StayRequest(**request), idempotency_key="k-1")
    again = await reservations.create(guest, StayRequest(**request), idempotency_key="k-1")
    assert again.id == first.id
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert len(snap.reservations) == 1
    assert len(snap.payments) == 1
