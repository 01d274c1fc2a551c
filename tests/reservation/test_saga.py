"""The booking saga end to end at the service layer, on both database backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from haot.lodging.inventory import SoldOut
from haot.platform.auth import Principal
from haot.reservation.schemas import StayRequest
from tests.reservation.conftest import World
from tests.support.gateway import pay_at_checkout


def stay(world: World, start: int = 10, nights: int = 2, guests: int = 2) -> StayRequest:
    check_in = world.today + timedelta(days=start)
    return StayRequest(
        room_type_id=world.room_type_id,
        check_in=check_in,
        check_out=check_in + timedelta(days=nights),
        guests=guests,
    )


async def night_counts(world: World, start: int, nights: int) -> list[tuple[int, int]]:
    calendar = await world.platform.services["lodging"].host_calendar(
        world.host, world.room_type_id, (world.today + timedelta(days=start)).strftime("%Y-%m")
    )
    wanted = {world.today + timedelta(days=start + i) for i in range(nights)}
    return [(d.held, d.sold) for d in calendar.days if d.date in wanted]


async def test_paid_reservation_is_confirmed_and_nights_sold(world: World) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest = world.guest()
    created = await reservations.create(guest, stay(world), idempotency_key=None)
    assert created.status == "PENDING"
    assert created.amount == 200_000
    assert created.payment_id
    assert created.checkout_url
    assert await night_counts(world, 10, 2) == [(1, 0), (1, 0)]

    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await payments.complete(guest, created.payment_id)
    await world.settle()

    read = await reservations.get_for(guest, created.id)
    assert read.status == "CONFIRMED"
    assert await night_counts(world, 10, 2) == [(0, 1), (0, 1)]


async def test_last_room_cannot_be_booked_twice(world: World) -> None:
    reservations = world.platform.services["reservation"]
    await reservations.create(world.guest(), stay(world), idempotency_key=None)
    with pytest.raises(SoldOut):
        await reservations.create(world.guest(), stay(world, start=11), idempotency_key=None)
    # The failed attempt held nothing.
    assert await night_counts(world, 11, 2) == [(1, 0), (0, 0)]


async def test_expired_hold_releases_nights_and_late_payment_is_refunded(world: World) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest = world.guest()
    created = await reservations.create(guest, stay(world), idempotency_key=None)
    assert created.payment_id
    # The guest opened the checkout page in time (the amount is pre-registered there).
    await world.platform.services["payment"].checkout(created.payment_id)
    result = await world.platform.jobs.run(
        "expire-holds", as_of=created.expires_at + timedelta(seconds=1)
    )
    assert result == {"expired": 1}
    await world.settle()
    assert (await reservations.get_for(guest, created.id)).status == "EXPIRED"
    assert await night_counts(world, 10, 2) == [(0, 0), (0, 0)]

    world.gateway.pay(created.payment_id)  # the guest pays after all
    await payments.complete(guest, created.payment_id)
    await world.settle()
    await asyncio.sleep(0.05)  # after-commit refund task
    await payments.execute_refunds()
    assert world.gateway.cancel_calls == [(created.payment_id, created.amount)]
    assert (await reservations.get_for(guest, created.id)).status == "EXPIRED"


async def test_amount_tampering_is_discrepant_and_never_confirms(world: World) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest = world.guest()
    created = await reservations.create(guest, stay(world), idempotency_key=None)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id, amount=1_000)
    payment = await payments.complete(guest, created.payment_id)
    await world.settle()
    assert payment.status == "DISCREPANT"
    assert (await reservations.get_for(guest, created.id)).status == "FAILED"
    assert await night_counts(world, 10, 2) == [(0, 0), (0, 0)]
    await payments.execute_refunds()
    assert world.gateway.cancel_calls == [(created.payment_id, 1_000)]


async def test_guest_cancellation_refunds_by_policy(world: World) -> None:
    reservations = world.platform.services["reservation"]
    payments = world.platform.services["payment"]
    guest: Principal = world.guest()
    created = await reservations.create(guest, stay(world, start=5), idempotency_key=None)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await payments.complete(guest, created.payment_id)
    await world.settle()
    cancelled = await reservations.cancel(guest, created.id, by_host=False, reason="")
    # Default policy: 100% at 7+ days, 50% at 3+ days: 5 days before → 50%.
    assert cancelled.refund_amount == 100_000
    await world.settle()
    await payments.execute_refunds()
    assert world.gateway.cancel_calls == [(created.payment_id, 100_000)]
    assert await night_counts(world, 5, 2) == [(0, 0), (0, 0)]
