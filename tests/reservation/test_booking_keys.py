"""A booking keeps its Idempotency-Key with the reservation, in the booking's transaction (ADR
0016), and a stay that cannot be had is refused before the booking's lock and transaction. Over
HTTP on the real app (the booking's direct route), in one transaction and as a saga."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from haot.platform.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from haot.platform.idempotency import IdempotencyRecord
from haot.reservation.models import Reservation
from haot.reservation.schemas import StayRequest
from haot.reservation.service import BookingFailed, replayed_answer
from tests.reservation.conftest import World
from tests.reservation.helpers import pay, problem, read, stay_body
from tests.reservation.invariants import assert_consistent

URL = "/api/v1/reservations"


async def post(world: World, guest: Any, body: dict[str, Any], key: str | None) -> Any:
    headers = world.auth(guest) | ({"Idempotency-Key": key} if key else {})
    return await world.http.post(URL, json=body, headers=headers)


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert problem(response) == code


async def stored_keys(world: World) -> int:
    async with world.platform.databases.sessions_for("platform")() as session:
        return int(await session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


async def test_a_retry_replays_the_first_answer_even_after_payment(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    body = stay_body(world, start=10, nights=2)
    first = await post(world, guest, body, "trip-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    await pay(world, guest, first.json())
    assert (await read(world, guest, first.json()["id"]))["status"] == "CONFIRMED"

    again = await post(world, guest, body, "trip-1")
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the first answer (PENDING), not today's state
    # The booking kept the key itself: nothing went through the generic key store.
    assert await stored_keys(world) == 0
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert len(snap.reservations) == len(snap.payments) == 1


async def test_concurrent_requests_with_one_key_book_once(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    body = stay_body(world, start=10, nights=3)
    responses = await asyncio.gather(*(post(world, guest, body, "rush") for _ in range(12)))
    booked = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(booked) + len(in_flight) == 12, [(r.status_code, r.text) for r in responses]
    for response in in_flight:  # only a saga can be met half-way; one transaction never is
        assert_problem(response, 409, "idempotency_key_in_flight")
    assert len({r.json()["id"] for r in booked}) == 1
    assert sum(1 for r in booked if r.headers.get("idempotent-replayed") != "true") == 1
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert len(snap.reservations) == len(snap.holds) == 1
    assert [n.held for n in snap.nights if n.held] == [1, 1, 1]


async def test_the_key_that_took_the_last_room_still_gets_its_reservation(
    api_world: World,
) -> None:
    world = api_world  # one room
    guest, rival = world.guest(), world.guest()
    body = stay_body(world, start=10)
    first = await post(world, guest, body, "last-room")
    assert first.status_code == 201, first.text
    assert_problem(await post(world, rival, body, "theirs"), 409, "sold_out")

    again = await post(world, guest, body, "last-room")
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_a_refusal_is_not_remembered(api_world: World) -> None:
    """A refused booking changed nothing, so a retry with its key runs again."""
    world = api_world
    guest, rival = world.guest(), world.guest()
    body = stay_body(world, start=10)
    taken = await post(world, rival, body, None)
    assert taken.status_code == 201
    assert_problem(await post(world, guest, body, "patient"), 409, "sold_out")

    cancelled = await world.http.post(
        f"{URL}/{taken.json()['id']}/cancel", json={}, headers=world.auth(rival)
    )
    assert cancelled.status_code == 200, cancelled.text
    await world.settle()

    retried = await post(world, guest, body, "patient")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    await world.settle()
    await assert_consistent(world.platform, world.gateway)


async def test_the_same_key_for_another_stay_or_a_malformed_key_is_422(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    assert (await post(world, guest, stay_body(world, start=10), "k")).status_code == 201
    for other in (
        stay_body(world, start=11),
        stay_body(world, start=10, nights=2),
        stay_body(world, start=10) | {"guests": 1},
        stay_body(world, start=10) | {"points": 100},
    ):
        assert_problem(await post(world, guest, other, "k"), 422, "idempotency_key_reused")
    for bad in ("has space", "x" * 256, "é".encode()):
        response = await world.http.post(
            URL,
            json=stay_body(world, start=20),
            headers=world.auth(guest) | {"Idempotency-Key": bad},
        )
        assert_problem(response, 422, "invalid_idempotency_key")
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert len(snap.reservations) == 1


async def test_an_early_refusal_answers_exactly_what_the_hold_would(api_world: World) -> None:
    """The unlocked availability check refuses sold-out stays before the booking's transaction;
    every other problem still gets the answer the hold gives."""
    world = api_world
    guest = world.guest()
    assert (await post(world, world.guest(), stay_body(world, start=10), None)).status_code == 201
    sold_out = stay_body(world, start=10)
    assert_problem(await post(world, guest, sold_out, None), 409, "sold_out")
    # A party the room does not take, on a sold-out night: the party is what the hold names.
    assert_problem(await post(world, guest, sold_out | {"guests": 3}, None), 422, "invalid_stay")
    unknown = sold_out | {"room_type_id": str(uuid.uuid4())}
    assert_problem(await post(world, guest, unknown, None), 404, "room_type_not_found")
    never_opened = stay_body(world, start=100)
    assert_problem(await post(world, guest, never_opened, None), 409, "sold_out")


async def test_the_direct_route_validates_like_the_fastapi_route(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    anonymous = await world.http.post(URL, json=stay_body(world, start=10))
    assert_problem(anonymous, 401, "unauthorized")
    missing = await world.http.post(URL, json={"guests": 2}, headers=world.auth(guest))
    assert_problem(missing, 422, "validation_error")
    assert ["body", "room_type_id"] in [e["loc"] for e in missing.json()["errors"]]
    not_json = await world.http.post(
        URL,
        content=b"{not json",
        headers=world.auth(guest) | {"Content-Type": "application/json"},
    )
    assert_problem(not_json, 422, "validation_error")
    empty = await world.http.post(URL, headers=world.auth(guest))
    assert_problem(empty, 422, "validation_error")
    too_many = await world.http.post(
        URL, json=stay_body(world, start=10) | {"guests": 0}, headers=world.auth(guest)
    )
    assert_problem(too_many, 422, "validation_error")


# The replay rule on its own, for the states only a saga can leave behind --------------------


def _reservation(**overrides: Any) -> Reservation:
    today = date(2027, 1, 10)
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "room_type_id": uuid.UUID(int=7),
        "check_in": today,
        "check_out": today + timedelta(days=2),
        "guests": 2,
        "user_coupon_id": None,
        "points_used": 0,
        "amount": 200_000,
        "status": "PENDING",
        "payment_id": "pay_1",
        "checkout_url": "http://gateway/checkout/pay_1",
        "expires_at": datetime(2027, 1, 1, tzinfo=UTC),
        "failure_reason": None,
    }
    return Reservation(**(fields | overrides))


def _request(reservation: Reservation, **overrides: Any) -> StayRequest:
    return StayRequest(
        room_type_id=reservation.room_type_id,
        check_in=reservation.check_in,
        check_out=reservation.check_out,
        guests=reservation.guests,
        **overrides,
    )


def test_a_replay_answers_the_first_status_whatever_came_after() -> None:
    for status in ("PENDING", "CONFIRMED", "CANCELLED", "COMPLETED", "EXPIRED", "FAILED"):
        paid_later = _reservation(status=status)
        booked = replayed_answer(paid_later, _request(paid_later))
        assert booked.replayed
        assert booked.created.status.value == "PENDING"
    free = _reservation(status="CONFIRMED", amount=0, payment_id=None, checkout_url=None)
    assert replayed_answer(free, _request(free)).created.status.value == "CONFIRMED"


def test_a_saga_half_way_is_in_flight_and_one_given_up_is_a_failed_booking() -> None:
    half_way = _reservation(payment_id=None, checkout_url=None, points_used=0)
    # Points are recorded only once held: a retry asking for points is not "another request".
    with pytest.raises(IdempotencyKeyInFlight):
        replayed_answer(half_way, _request(half_way, points=500))
    for status in ("FAILED", "EXPIRED", "CANCELLED"):
        given_up = replace_status(half_way, status, "coupon is no longer usable")
        with pytest.raises(BookingFailed, match="coupon is no longer usable"):
            replayed_answer(given_up, _request(given_up))
    done = _reservation(points_used=500)
    with pytest.raises(IdempotencyKeyReused):
        replayed_answer(done, _request(done, points=400))
    with pytest.raises(IdempotencyKeyReused):
        replayed_answer(done, _request(done, points=500, user_coupon_id=uuid.uuid4()))


def replace_status(reservation: Reservation, status: str, reason: str) -> Reservation:
    return _reservation(
        **{
            name: getattr(reservation, name)
            for name in ("room_type_id", "check_in", "check_out", "guests", "amount")
        },
        payment_id=None,
        checkout_url=None,
        status=status,
        failure_reason=reason,
    )
