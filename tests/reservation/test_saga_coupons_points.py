"""The saga with the real coupon and point contexts: a booking that confirms uses the coupon and
spends the points; one that fails, expires or is cancelled gives both back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from haot.coupon.domain import DiscountType
from haot.coupon.schemas import CouponCreate
from haot.platform.auth import Principal
from haot.platform.clock import utcnow
from haot.platform.web import PageParams
from haot.point.schemas import GrantCreate
from haot.reservation.schemas import StayRequest
from haot.reservation.service import ReservationService
from tests.reservation.conftest import World
from tests.reservation.invariants import assert_consistent
from tests.reservation.test_saga_failures import BrokenPayments, saga
from tests.support.gateway import pay_at_checkout

POINTS = 50_000
USE_POINTS = 30_000
COUPON_OFF = 20_000


async def wallet(world: World, guest: Principal) -> uuid.UUID:
    """Give the guest POINTS points and a COUPON_OFF coupon; returns the user coupon id."""
    await world.platform.services["point"].grant(
        GrantCreate(user_id=guest.user_id, amount=POINTS, reason="welcome")
    )
    coupons = world.platform.services["coupon"]
    coupon = await coupons.create_coupon(
        CouponCreate(
            name="20k off",
            discount_type=DiscountType.FIXED,
            discount_value=COUPON_OFF,
            valid_from=utcnow() - timedelta(hours=1),
            valid_to=utcnow() + timedelta(days=90),
        )
    )
    issued = await coupons.issue(coupon.id, [guest.user_id])
    (user_coupon_id,) = issued.issued
    return uuid.UUID(str(user_coupon_id))


def stay(world: World, user_coupon_id: uuid.UUID, start: int = 10) -> StayRequest:
    check_in = world.today + timedelta(days=start)
    return StayRequest(
        room_type_id=world.room_type_id,
        check_in=check_in,
        check_out=check_in + timedelta(days=2),
        guests=2,
        user_coupon_id=user_coupon_id,
        points=USE_POINTS,
    )


async def coupon_status(world: World, guest: Principal, user_coupon_id: uuid.UUID) -> str:
    page = await world.platform.services["coupon"].my_coupons(
        guest.user_id, status=None, paging=PageParams(page=1, size=100)
    )
    (found,) = [c for c in page.items if c.id == user_coupon_id]
    return str(found.status)


async def points(world: World, guest: Principal) -> tuple[int, int]:
    balance = await world.platform.services["point"].balance(guest.user_id)
    return balance.balance, balance.held


async def test_paid_booking_uses_the_coupon_and_spends_the_points(world: World) -> None:
    guest = world.guest()
    user_coupon_id = await wallet(world, guest)
    created = await world.platform.services["reservation"].create(
        guest, stay(world, user_coupon_id), idempotency_key=None
    )
    assert created.amount == 200_000 - COUPON_OFF - USE_POINTS
    assert await coupon_status(world, guest, user_coupon_id) == "RESERVED"
    assert await points(world, guest) == (POINTS - USE_POINTS, USE_POINTS)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await world.platform.services["payment"].complete(guest, created.payment_id)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "CONFIRMED"
    assert await coupon_status(world, guest, user_coupon_id) == "USED"
    assert await points(world, guest) == (POINTS - USE_POINTS, 0)


@pytest.mark.parametrize("one_transaction", [False, True], ids=["saga", "one-transaction"])
async def test_failed_payment_step_gives_coupon_and_points_back(
    world: World, one_transaction: bool
) -> None:
    guest = world.guest()
    user_coupon_id = await wallet(world, guest)
    service = saga(world, one_transaction=one_transaction, payments=BrokenPayments())
    with pytest.raises(RuntimeError, match="payment context crashed"):
        await service.create(guest, stay(world, user_coupon_id), idempotency_key=None)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    # A saga records the failure and compensates; one transaction leaves nothing at all.
    assert [r.status for r in snap.reservations] == ([] if one_transaction else ["FAILED"])
    assert await coupon_status(world, guest, user_coupon_id) == "ISSUED"
    assert await points(world, guest) == (POINTS, 0)


async def test_expired_booking_gives_coupon_and_points_back(world: World) -> None:
    guest = world.guest()
    user_coupon_id = await wallet(world, guest)
    created = await world.platform.services["reservation"].create(
        guest, stay(world, user_coupon_id), idempotency_key=None
    )
    late = created.expires_at + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 1}
    await world.settle()
    await assert_consistent(world.platform, world.gateway)
    assert await coupon_status(world, guest, user_coupon_id) == "ISSUED"
    assert await points(world, guest) == (POINTS, 0)


async def test_guest_cancellation_with_full_refund_restores_coupon_and_points(
    world: World,
) -> None:
    guest = world.guest()
    user_coupon_id = await wallet(world, guest)
    reservations = world.platform.services["reservation"]
    created = await reservations.create(
        guest, stay(world, user_coupon_id, start=20), idempotency_key=None
    )
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await world.platform.services["payment"].complete(guest, created.payment_id)
    await world.settle()
    cancelled = await reservations.cancel(guest, created.id, by_host=False, reason="")
    assert cancelled.refund_amount == created.amount  # 20 days before: 100 %
    await world.settle()
    await assert_consistent(world.platform, world.gateway)
    assert world.gateway.cancel_calls == [(created.payment_id, created.amount)]
    assert await coupon_status(world, guest, user_coupon_id) == "ISSUED"
    assert await points(world, guest) == (POINTS, 0)


class ExpiresBeforeCouponReserve:
    """The saga is slow: its reservation expires (and every context has compensated) before it
    reserves the coupon."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._real = world.platform.services["coupon.client"]

    async def discount_for(self, **kwargs: Any) -> int:
        result: int = await self._real.discount_for(**kwargs)
        return result

    async def reserve(self, **kwargs: Any) -> int:
        await self._world.platform.jobs.run("expire-holds", as_of=utcnow() + timedelta(hours=1))
        await self._world.settle()
        result: int = await self._real.reserve(**kwargs)
        return result


async def test_coupon_reserved_after_the_reservation_expired_is_given_back(world: World) -> None:
    guest = world.guest()
    user_coupon_id = await wallet(world, guest)
    platform = world.platform
    service = ReservationService(
        uow=platform.uow_factory("reservation"),
        lodging=platform.services["lodging.client"],
        coupons=ExpiresBeforeCouponReserve(world),
        points=platform.services["point.client"],
        payments=platform.services["payment.client"],
        hold_ttl=timedelta(minutes=10),
        max_pending_per_user=5,
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 (whichever step notices first)
        await service.create(guest, stay(world, user_coupon_id), idempotency_key=None)
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    assert [r.status for r in snap.reservations] == ["EXPIRED"]
    assert await points(world, guest) == (POINTS, 0)
    assert await coupon_status(world, guest, user_coupon_id) == "ISSUED"
