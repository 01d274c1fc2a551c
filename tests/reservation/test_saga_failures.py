"""A failure at any step of the booking saga, a crash between steps, or the expiry racing the
payment: the booking ends fully confirmed or fully compensated, never in between. The step
failures run both ways: as a saga (separate databases) and in one transaction (ADR 0013)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from haot.lodging.inventory import HoldReleased, SoldOut
from haot.payment.service import PaymentRefused
from haot.platform.auth import Principal
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, InvalidInput
from haot.reservation.schemas import StayRequest
from haot.reservation.service import InvalidTransition, ReservationService
from tests.reservation.conftest import World
from tests.reservation.invariants import assert_consistent
from tests.support.gateway import pay_at_checkout


def stay(world: World, start: int = 10, nights: int = 2, **extra: Any) -> StayRequest:
    check_in = world.today + timedelta(days=start)
    return StayRequest(
        room_type_id=world.room_type_id,
        check_in=check_in,
        check_out=check_in + timedelta(days=nights),
        guests=2,
        **extra,
    )


def saga(world: World, *, one_transaction: bool = False, **ports: Any) -> ReservationService:
    """The reservation service as wired, with some ports replaced (failure injection); a saga
    unless ``one_transaction``."""
    platform = world.platform
    values: dict[str, Any] = {
        "one_transaction": one_transaction,
        "uow": platform.uow_factory("reservation"),
        "lodging": platform.services["lodging.client"],
        "coupons": platform.services["reservation"]._coupons,
        "points": platform.services["reservation"]._points,
        "payments": platform.services["payment.client"],
        "hold_ttl": timedelta(minutes=10),
        "max_pending_per_user": 5,
    }
    values.update(ports)
    return ReservationService(**values)


class CouponRefused(InvalidInput):
    code = "coupon_refused_in_test"


class PointsRefused(Conflict):
    code = "points_refused_in_test"


class CouponThatCannotBeReserved:
    async def discount_for(self, **_: object) -> int:
        return 10_000

    async def reserve(self, **_: object) -> int:
        raise CouponRefused("the coupon was used elsewhere in the meantime")


class PointsThatCannotBeHeld:
    async def spendable(self, **_: object) -> int:
        return 1_000_000

    async def hold(self, **_: object) -> None:
        raise PointsRefused("points were spent elsewhere in the meantime")


class BrokenPayments:
    async def create_payment(self, **_: object) -> tuple[str, str]:
        raise RuntimeError("payment context crashed")


class CompetitorFirst:
    """Quotes fine, but another guest takes the last room before this one's hold."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._real = world.platform.services["lodging.client"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def quote(self, *args: Any) -> Any:
        quote = await self._real.quote(*args)
        rival = self._world.platform.services["reservation"]
        await rival.create(self._world.guest(), stay(self._world), idempotency_key=None)
        return quote


class ExpiresWhileBooking:
    """The expiry job gives the booking up (and its events are delivered) while the saga is
    slow: just before or just after the payment is created."""

    def __init__(self, world: World, *, before_payment: bool) -> None:
        self._world = world
        self._real = world.platform.services["payment.client"]
        self._before = before_payment

    async def _expire(self) -> None:
        await self._world.platform.jobs.run("expire-holds", as_of=utcnow() + timedelta(hours=1))
        await self._world.settle()

    async def create_payment(self, **kwargs: Any) -> tuple[str, str]:
        if self._before:
            await self._expire()
        created = await self._real.create_payment(**kwargs)
        if not self._before:
            await self._expire()
        return created


Step = Callable[[World], tuple[ReservationService, StayRequest, type[BaseException]]]

STEPS: dict[str, Step] = {
    "hold: sold out after the quote": lambda w: (
        saga(w, lodging=CompetitorFirst(w)),
        stay(w),
        SoldOut,
    ),
    "coupon: cannot be reserved": lambda w: (
        saga(w, coupons=CouponThatCannotBeReserved()),
        stay(w, user_coupon_id=uuid.uuid4()),
        CouponRefused,
    ),
    "points: cannot be held": lambda w: (
        saga(w, points=PointsThatCannotBeHeld()),
        stay(w, points=5_000),
        PointsRefused,
    ),
    "payment: unexpected crash": lambda w: (
        saga(w, payments=BrokenPayments()),
        stay(w),
        RuntimeError,
    ),
}

# The same failures inside one transaction (the saga's quote step does not exist there, so the
# competitor takes the last room just before the booking starts).
ONE_TRANSACTION_STEPS: dict[str, Step] = {
    "hold: sold out": lambda w: (
        saga(w, one_transaction=True),
        stay(w),
        SoldOut,
    ),
    "coupon: cannot be reserved": lambda w: (
        saga(w, one_transaction=True, coupons=CouponThatCannotBeReserved()),
        stay(w, user_coupon_id=uuid.uuid4()),
        CouponRefused,
    ),
    "points: cannot be held": lambda w: (
        saga(w, one_transaction=True, points=PointsThatCannotBeHeld()),
        stay(w, points=5_000),
        PointsRefused,
    ),
    "payment: unexpected crash": lambda w: (
        saga(w, one_transaction=True, payments=BrokenPayments()),
        stay(w),
        RuntimeError,
    ),
}


@pytest.mark.parametrize("step", list(ONE_TRANSACTION_STEPS))
async def test_failure_at_a_step_in_one_transaction_leaves_nothing_behind(
    world: World, step: str
) -> None:
    service, request, error = ONE_TRANSACTION_STEPS[step](world)
    if step.startswith("hold"):
        rival = world.guest()
        await service.create(rival, request, idempotency_key=None)
    events_before = len(await world.outbox_all())
    guest = world.guest()
    with pytest.raises(error):
        await service.create(guest, request, idempotency_key=None)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    # Nothing of this guest's attempt exists: no reservation, hold, payment or event.
    assert [r for r in snap.reservations if r.user_id == guest.user_id] == []
    assert all(p.user_id != guest.user_id for p in snap.payments)
    assert len(await world.outbox_all()) == events_before
    others = [r for r in snap.reservations if r.user_id != guest.user_id]
    for day in (10, 11):
        night = snap.night(world.room_type_id, world.today + timedelta(days=day))
        assert night.held == sum(1 for r in others if r.status == "PENDING")


@pytest.mark.parametrize("step", list(STEPS))
async def test_failure_at_a_saga_step_fails_the_reservation_and_undoes_every_step(
    world: World, step: str
) -> None:
    service, request, error = STEPS[step](world)
    guest = world.guest()
    with pytest.raises(error):
        await service.create(guest, request, idempotency_key=None)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    mine = [r for r in snap.reservations if r.user_id == guest.user_id]
    assert [r.status for r in mine] == ["FAILED"]
    assert mine[0].failure_reason
    hold = snap.hold(mine[0].id)
    assert hold is None or hold.status == "RELEASED"
    payment = snap.payment(mine[0].id)
    assert payment is None or payment.status == "FAILED"  # voided, never left READY
    # Whatever else happened (a competitor's booking), nothing of this guest's stay is held.
    others = [r for r in snap.reservations if r.user_id != guest.user_id]
    for day in (10, 11):
        night = snap.night(world.room_type_id, world.today + timedelta(days=day))
        assert night.held == sum(1 for r in others if r.status == "PENDING")


async def test_booking_asks_nothing_of_the_gateway_and_checkout_pre_registers_the_amount(
    api_world: World,
) -> None:
    world = api_world
    guest = world.guest()
    body = stay(world).model_dump(mode="json", exclude_none=True)
    response = await world.http.post("/api/v1/reservations", json=body, headers=world.auth(guest))
    assert response.status_code == 201, response.text
    created = response.json()
    payment_id = created["payment_id"]
    assert created["checkout_url"].endswith(f"/payments/{payment_id}/checkout")
    assert payment_id not in world.gateway.payments  # the booking did not wait for PortOne

    world.gateway.fail_next.append("pre_register")
    unavailable = await world.http.get(f"/payments/{payment_id}/checkout")
    assert unavailable.status_code == 503, unavailable.text
    assert unavailable.json()["code"] == "payment_gateway_unavailable"
    assert unavailable.headers["Retry-After"]

    redirected = await world.http.get(f"/payments/{payment_id}/checkout")
    assert redirected.status_code == 303, redirected.text
    location = redirected.headers["location"]
    assert f"/fake-portone/checkout/{payment_id}?return_url=" in location
    assert world.gateway.payments[payment_id].amount == created["amount"]
    # A second visit changes nothing.
    again = await world.http.get(f"/payments/{payment_id}/checkout")
    assert (again.status_code, again.headers["location"]) == (303, location)
    assert len([p for p in world.gateway.payments if p == payment_id]) == 1


async def test_checkout_of_an_unknown_or_finished_payment_is_a_problem(api_world: World) -> None:
    world = api_world
    unknown = await world.http.get("/payments/pay_00000000000000000000000000000000/checkout")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "payment_not_found")
    guest = world.guest()
    body = stay(world).model_dump(mode="json", exclude_none=True)
    created = (
        await world.http.post("/api/v1/reservations", json=body, headers=world.auth(guest))
    ).json()
    cancelled = await world.http.post(
        f"/api/v1/reservations/{created['id']}/cancel", json={}, headers=world.auth(guest)
    )
    assert cancelled.status_code == 200, cancelled.text
    await world.settle()
    finished = await world.http.get(f"/payments/{created['payment_id']}/checkout")
    assert (finished.status_code, finished.json()["code"]) == (409, "payment_not_payable")


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"user_coupon_id": str(uuid.uuid4())}, 422, "coupon_not_usable"),
        ({"points": 1_000}, 409, "insufficient_points"),
    ],
    ids=["unknown-coupon", "points-without-balance"],
)
async def test_coupon_or_points_refused_up_front_books_nothing(
    api_world: World, extra: dict[str, Any], status: int, code: str
) -> None:
    world = api_world
    body = stay(world).model_dump(mode="json", exclude_none=True) | extra
    response = await world.http.post(
        "/api/v1/reservations", json=body, headers=world.auth(world.guest())
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservations == []
    assert [h for h in snap.holds if h.status != "RELEASED"] == []
    assert all(n.held == 0 for n in snap.nights)


@pytest.mark.parametrize(
    "before_payment",
    [
        pytest.param(False, id="after-payment"),
        pytest.param(True, id="before-payment"),
    ],
)
async def test_expiry_while_booking_ends_expired_with_every_step_undone(
    world: World, before_payment: bool
) -> None:
    service = saga(world, payments=ExpiresWhileBooking(world, before_payment=before_payment))
    guest = world.guest()
    # Before the payment exists, the payment context's fence refuses it; after, the saga's own
    # final step notices the reservation is no longer PENDING.
    refusal = PaymentRefused if before_payment else InvalidTransition
    with pytest.raises(refusal):
        await service.create(guest, stay(world), idempotency_key=None)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    (reservation,) = snap.reservations
    assert reservation.status == "EXPIRED"
    payment = snap.payment(reservation.id)
    assert payment is None or payment.status == "FAILED"


# --- a crash between steps: the process dies, the expiry job gives the booking up -------------


async def _crash_after(world: World, step: str) -> tuple[Any, StayRequest]:
    service: ReservationService = world.platform.services["reservation"]
    guest = world.guest()
    request = stay(world)
    quote = await world.platform.services["lodging.client"].quote(
        request.room_type_id, request.check_in, request.check_out, request.guests
    )
    reservation = await service._record(guest, request, quote, None)
    if step in ("hold", "payment"):
        await world.platform.services["lodging.client"].hold(
            reservation.id, request.room_type_id, request.check_in, request.check_out, 2
        )
    if step == "payment":
        await world.platform.services["payment.client"].create_payment(
            reservation_id=reservation.id,
            user_id=guest.user_id,
            amount=quote.subtotal,
            order_name="crash test",
        )
    return reservation, request


@pytest.mark.parametrize("step", ["record", "hold", "payment"])
async def test_crash_after_a_step_is_given_up_by_the_expiry_job(world: World, step: str) -> None:
    reservation, request = await _crash_after(world, step)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway, mid_saga=True)
    assert snap.reservation(reservation.id).status == "PENDING"

    early = reservation.expires_at - timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=early) == {"expired": 0}
    late = reservation.expires_at + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 1}
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(reservation.id).status == "EXPIRED"
    assert all((n.held, n.sold) == (0, 0) for n in snap.nights)
    payment = snap.payment(reservation.id)
    assert payment is not None
    assert payment.status == "FAILED"
    if step != "payment":
        # No payment existed: a tombstone takes its place, so a late create is refused.
        assert (payment.amount, payment.id) == (0, f"void_{reservation.id.hex}")
        with pytest.raises(PaymentRefused):
            await world.platform.services["payment.client"].create_payment(
                reservation_id=reservation.id,
                user_id=reservation.user_id,
                amount=reservation.amount,
                order_name="late",
            )

    # The crashed process comes back and tries to hold: fenced, nothing is held.
    with pytest.raises(HoldReleased):
        await world.platform.services["lodging.client"].hold(
            reservation.id, request.room_type_id, request.check_in, request.check_out, 2
        )
    await assert_consistent(world.platform, world.gateway)


# --- the expiry racing the payment -------------------------------------------------------------


async def test_payment_recorded_but_expired_before_confirmation_is_refunded_once(
    world: World,
) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest = world.guest()
    created = await reservations.create(guest, stay(world), idempotency_key=None)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await payments.sync(created.payment_id)  # PAID, its event not consumed yet
    late = created.expires_at + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 1}
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "EXPIRED"
    assert world.gateway.cancel_calls == [(created.payment_id, created.amount)]


async def test_payment_confirmed_before_expiry_is_left_alone_by_the_expiry_job(
    world: World,
) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest = world.guest()
    created = await reservations.create(guest, stay(world), idempotency_key=None)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await payments.complete(guest, created.payment_id)
    await world.settle()
    late = created.expires_at + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 0}
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "CONFIRMED"
    assert world.gateway.cancel_calls == []


async def test_expiry_racing_payment_ends_confirmed_or_expired_and_refunded_once(
    pg_world: World,
) -> None:
    world = pg_world
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    relay = next(iter(world.platform.relays.values()))
    outcomes: list[str] = []
    # The expiry job starts this long after the guest's "payment done": from "at once" (expiry
    # wins) through the window where they overlap to "once confirmed" (None: confirmation wins).
    delays = [0.0, 0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06, 0.1, None]
    for attempt, delay in enumerate(delays):
        confirmed = asyncio.Event()
        guest = world.guest()
        created = await reservations.create(
            guest, stay(world, start=5 + 2 * attempt), idempotency_key=None
        )
        assert created.payment_id
        payment_id = created.payment_id
        await pay_at_checkout(world.platform, world.gateway, payment_id)
        late = created.expires_at + timedelta(seconds=1)

        async def pay_and_confirm(
            guest: Principal = guest, payment_id: str = payment_id, done: asyncio.Event = confirmed
        ) -> None:
            await payments.complete(guest, payment_id)
            await relay.drain()
            done.set()

        async def expire_after(
            delay: float | None = delay, late: datetime = late, done: asyncio.Event = confirmed
        ) -> None:
            await (done.wait() if delay is None else asyncio.sleep(delay))
            await world.platform.jobs.run("expire-holds", as_of=late)

        await asyncio.gather(pay_and_confirm(), expire_after())
        await world.settle()
        snap = await assert_consistent(world.platform, world.gateway)
        status = snap.reservation(created.id).status
        assert status in ("CONFIRMED", "EXPIRED")
        refunds = [c for c in world.gateway.cancel_calls if c[0] == payment_id]
        if status == "CONFIRMED":
            assert refunds == []
        else:
            assert refunds == [(payment_id, created.amount)]
        outcomes.append(status)
    # Both ends were reached (so the race was real), and each was whole.
    assert set(outcomes) == {"CONFIRMED", "EXPIRED"}, outcomes
