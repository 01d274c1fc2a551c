"""Double booking is impossible by construction: crowds racing for the same nights on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from haot.lodging.inventory import SoldOut
from haot.reservation.schemas import StayRequest
from tests.reservation.conftest import World
from tests.reservation.invariants import assert_consistent

ROUNDS = 20
CROWD = 50


async def test_fifty_guests_racing_for_the_last_room_night_one_wins_every_round(
    api_world: World,
) -> None:
    world = api_world
    winners: list[str] = []
    for round_ in range(ROUNDS):
        check_in = world.today + timedelta(days=5 + round_)
        body = {
            "room_type_id": str(world.room_type_id),
            "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(days=1)).isoformat(),
            "guests": 2,
        }
        guests = [world.guest() for _ in range(CROWD)]  # distinct: pending limit is per user
        responses = await asyncio.gather(
            *(
                world.http.post("/api/v1/reservations", json=body, headers=world.auth(g))
                for g in guests
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * (CROWD - 1), f"round {round_}: {statuses}"
        for response in responses:
            if response.status_code == 409:
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["code"] == "sold_out", response.text
            else:
                created = response.json()
                assert created["status"] == "PENDING"
                winners.append(created["id"])

    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    pending = [r for r in snap.reservations if r.status == "PENDING"]
    assert sorted(str(r.id) for r in pending) == sorted(winners)
    for round_ in range(ROUNDS):
        night = snap.night(world.room_type_id, world.today + timedelta(days=5 + round_))
        assert (night.held, night.sold, night.total) == (1, 0, 1)
    # Losers that got as far as recording a reservation were failed and held nothing.
    assert {r.status for r in snap.reservations} <= {"PENDING", "FAILED"}


async def test_random_overlapping_stays_never_oversell_and_hold_all_nights_or_none(
    pg_world: World,
) -> None:
    world = pg_world
    start = world.today + timedelta(days=3)
    room_type_id = await world.add_room_type(rooms=2, start=start, nights=7)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    requests = []
    for _ in range(100):
        offset = rng.randrange(7)
        length = rng.randint(1, 7 - offset)
        check_in = start + timedelta(days=offset)
        requests.append(
            StayRequest(
                room_type_id=room_type_id,
                check_in=check_in,
                check_out=check_in + timedelta(days=length),
                guests=2,
            )
        )
    reservations = world.platform.services["reservation"]
    outcomes = await asyncio.gather(
        *(reservations.create(world.guest(), r, idempotency_key=None) for r in requests),
        return_exceptions=True,
    )
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, SoldOut)
    ]
    assert not unexpected, f"seed {seed}: {unexpected[:3]}"
    won = {o.id for o in outcomes if not isinstance(o, BaseException)}
    assert won, f"seed {seed}: nobody got a room"

    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    ours = [r for r in snap.reservations if r.room_type_id == room_type_id]
    assert {r.id for r in ours if r.status == "PENDING"} == won
    for day in range(7):
        date_ = start + timedelta(days=day)
        night = snap.night(room_type_id, date_)
        covering = [r for r in ours if r.status == "PENDING" and r.check_in <= date_ < r.check_out]
        assert night.held + night.sold <= 2, f"seed {seed}: {date_} oversold"
        assert night.held + night.sold == len(covering), f"seed {seed}: {date_}"
    for r in ours:
        hold = snap.hold(r.id)
        if r.id in won:
            assert hold is not None
            assert hold.status == "HELD"
            assert (hold.check_in, hold.check_out) == (r.check_in, r.check_out)
        else:
            assert hold is None or hold.status == "RELEASED", f"seed {seed}: {r.id}"

    # Giving every winner up puts every night back.
    expire_at = max(r.expires_at for r in ours) + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=expire_at) == {"expired": len(won)}
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert all((n.held, n.sold) == (0, 0) for n in snap.nights if n.room_type_id == room_type_id)
