"""Cancellation and completion over HTTP: refunds per the lodging's policy (guest) or in full
(host, admin), once, and only from states that allow it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from haot.platform.auth import Role
from tests.reservation.conftest import World
from tests.reservation.helpers import book, booked_and_paid, problem, read
from tests.reservation.invariants import assert_consistent

PRICE = 100_000  # one night

# The default policy [7d: 100 %, 3d: 50 %, 0d: 0 %]; days before check-in → refund (None:
# the stay has started, a guest can no longer cancel).
POLICY_CASES: list[tuple[int, int | None]] = [
    (30, 100),
    (8, 100),
    (7, 100),
    (6, 50),
    (4, 50),
    (3, 50),
    (2, 0),
    (1, 0),
    (0, None),
]


async def test_guest_cancellation_refunds_per_policy_tier(api_world: World) -> None:
    world = api_world
    booked = {}
    for days, _ in POLICY_CASES:
        guest = world.guest()
        booked[days] = (guest, await booked_and_paid(world, guest, start=days))

    outcome: dict[int, int | str] = {}
    for days, _ in POLICY_CASES:
        guest, created = booked[days]
        # What the guest is shown first: exactly what the cancellation then does.
        terms = await world.http.get(
            f"/api/v1/reservations/{created['id']}/cancellation", headers=world.auth(guest)
        )
        response = await world.http.post(
            f"/api/v1/reservations/{created['id']}/cancel",
            json={"reason": "plans changed"},
            headers=world.auth(guest),
        )
        if response.status_code == 200:
            body = response.json()
            assert body["status"] == "CANCELLED"
            assert body["cancelled_by"] == "GUEST"
            outcome[days] = body["refund_amount"]
            assert terms.status_code == 200, terms.text
            assert terms.json()["refund_amount"] == body["refund_amount"]
        else:
            outcome[days] = f"{response.status_code} {problem(response)}"
            assert (terms.status_code, problem(terms)) == (response.status_code, problem(response))
    await world.settle()

    expected = {
        days: PRICE * percent // 100 if percent is not None else "409 cancellation_closed"
        for days, percent in POLICY_CASES
    }
    assert outcome == expected
    refunded = {}
    for days, _ in POLICY_CASES:
        _, created = booked[days]
        calls = [
            amount for pid, amount in world.gateway.cancel_calls if pid == created["payment_id"]
        ]
        refunded[days] = sum(calls)
        assert len(calls) <= 1
    assert refunded == {d: r if isinstance(r, int) else 0 for d, r in expected.items()}
    snap = await assert_consistent(world.platform, world.gateway)
    for days, percent in POLICY_CASES:
        payment = snap.payment(booked[days][1]["id"])
        assert payment is not None
        assert (
            payment.status
            == {
                100: "CANCELLED",
                50: "PARTIALLY_CANCELLED",
                0: "PAID",
                None: "PAID",
            }[percent]
        )


async def test_host_and_admin_cancellations_refund_in_full(api_world: World) -> None:
    world = api_world
    admin = world.principal(Role.ADMIN)
    for start, who in ((1, world.host), (2, admin)):
        guest = world.guest()
        created = await booked_and_paid(world, guest, start=start)
        # What the host is shown first: the full refund the cancel then gives.
        terms = await world.http.get(
            f"/api/v1/host/reservations/{created['id']}/cancellation", headers=world.auth(who)
        )
        assert terms.status_code == 200, terms.text
        assert terms.json() == {"refund_percent": 100, "refund_amount": PRICE, "points_refund": 0}
        response = await world.http.post(
            f"/api/v1/host/reservations/{created['id']}/cancel",
            json={"reason": "pipe burst"},
            headers=world.auth(who),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "CANCELLED"
        assert body["refund_amount"] == PRICE  # a guest would get 0 % this close to check-in
        assert body["cancelled_by"] == ("HOST" if who is world.host else "ADMIN")
        await world.settle()
        assert [c for c in world.gateway.cancel_calls if c[0] == created["payment_id"]] == [
            (created["payment_id"], PRICE)
        ]
    await assert_consistent(world.platform, world.gateway)


async def test_cancelling_twice_is_409_invalid_state_and_refunds_once(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    created = await booked_and_paid(world, guest, start=20)
    url = f"/api/v1/reservations/{created['id']}/cancel"
    first = await world.http.post(url, headers=world.auth(guest))
    assert first.status_code == 200, first.text
    second = await world.http.post(url, headers=world.auth(guest))
    assert second.status_code == 409
    assert problem(second) == "invalid_state"
    await world.settle()
    assert world.gateway.cancel_calls == [(created["payment_id"], PRICE)]
    await assert_consistent(world.platform, world.gateway)


async def test_someone_elses_reservation_cannot_be_cancelled_and_is_404(api_world: World) -> None:
    """Nor can its refund be asked for."""
    world = api_world
    owner = world.guest()
    created = await booked_and_paid(world, owner, start=20)
    stranger = world.guest()
    terms = await world.http.get(
        f"/api/v1/reservations/{created['id']}/cancellation", headers=world.auth(stranger)
    )
    assert terms.status_code == 404
    assert problem(terms) == "reservation_not_found"
    response = await world.http.post(
        f"/api/v1/reservations/{created['id']}/cancel", headers=world.auth(stranger)
    )
    assert response.status_code == 404
    assert problem(response) == "reservation_not_found"
    other_host = world.principal(Role.HOST)
    response = await world.http.post(
        f"/api/v1/host/reservations/{created['id']}/cancel", headers=world.auth(other_host)
    )
    assert response.status_code == 404
    terms = await world.http.get(
        f"/api/v1/host/reservations/{created['id']}/cancellation", headers=world.auth(other_host)
    )
    assert problem(terms) == "reservation_not_found"
    terms = await world.http.get(
        f"/api/v1/host/reservations/{created['id']}/cancellation", headers=world.auth(owner)
    )
    assert terms.status_code == 403
    # The guest cannot use the host route to get a full refund either.
    response = await world.http.post(
        f"/api/v1/host/reservations/{created['id']}/cancel", headers=world.auth(owner)
    )
    assert response.status_code == 403
    await world.settle()
    assert (await read(world, owner, created["id"]))["status"] == "CONFIRMED"
    assert world.gateway.cancel_calls == []


async def test_five_concurrent_cancellations_refund_once(api_world: World) -> None:
    world = api_world
    guest = world.guest()
    created = await booked_and_paid(world, guest, start=20)
    responses = await asyncio.gather(
        *(
            world.http.post(
                f"/api/v1/reservations/{created['id']}/cancel", headers=world.auth(guest)
            )
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    assert {problem(r) for r in responses if r.status_code == 409} == {"invalid_state"}
    await world.settle()
    assert world.gateway.cancel_calls == [(created["payment_id"], PRICE)]
    assert len(await world.outbox("reservation.reservation_cancelled")) == 1
    await assert_consistent(world.platform, world.gateway)


async def test_cancelling_an_unpaid_reservation_releases_it_and_voids_the_payment(
    api_world: World,
) -> None:
    world = api_world
    guest = world.guest()
    created = await book(world, guest, start=15, nights=3)
    response = await world.http.post(
        f"/api/v1/reservations/{created['id']}/cancel", headers=world.auth(guest)
    )
    assert response.status_code == 200, response.text
    assert response.json()["refund_amount"] == 0
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    payment = snap.payment(created["id"])
    assert payment is not None
    assert payment.status == "FAILED"
    assert all((n.held, n.sold) == (0, 0) for n in snap.nights)
    assert world.gateway.cancel_calls == []


async def test_completion_job_completes_stays_after_check_out_only(api_world: World) -> None:
    world = api_world
    admin = world.principal(Role.ADMIN)
    guest = world.guest()
    created = await booked_and_paid(world, guest, start=2, nights=2)
    check_out = world.today + timedelta(days=4)

    async def run(as_of: str) -> int:
        response = await world.http.post(
            "/api/v1/admin/jobs/complete-stays/run",
            params={"as_of": as_of},
            headers=world.auth(admin),
        )
        assert response.status_code == 200, response.text
        completed: int = response.json()["result"]["completed"]
        return completed

    assert await run((check_out - timedelta(days=1)).isoformat()) == 0
    assert (await read(world, guest, created["id"]))["status"] == "CONFIRMED"
    assert await run(check_out.isoformat()) == 1
    assert await run(check_out.isoformat()) == 0
    found = await read(world, guest, created["id"])
    assert found["status"] == "COMPLETED"
    assert found["completed_at"] is not None
    events = await world.outbox("reservation.reservation_completed")
    assert [e.payload["reservation_id"] for e in events] == [created["id"]]
    await world.settle()
    await assert_consistent(world.platform, world.gateway)

    # A completed stay cannot be cancelled, by the guest or the host.
    for who, path in ((guest, "/api/v1/reservations"), (world.host, "/api/v1/host/reservations")):
        response = await world.http.post(f"{path}/{created['id']}/cancel", headers=world.auth(who))
        assert response.status_code == 409, response.text
        assert problem(response) == "invalid_state"
    await world.settle()
    assert world.gateway.cancel_calls == []
    assert (await read(world, guest, created["id"]))["status"] == "COMPLETED"
