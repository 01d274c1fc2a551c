"""Money that must go back goes back exactly once: tampered amounts, payments after expiry, however
often completion, sync and the reconciler run, and however concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from haot.platform.auth import Principal
from haot.reservation.schemas import ReservationCreated, StayRequest
from tests.reservation.conftest import World
from tests.reservation.invariants import assert_consistent
from tests.support.gateway import pay_at_checkout


def stay(world: World, start: int = 10, nights: int = 2) -> StayRequest:
    check_in = world.today + timedelta(days=start)
    return StayRequest(
        room_type_id=world.room_type_id,
        check_in=check_in,
        check_out=check_in + timedelta(days=nights),
        guests=2,
    )


async def book(world: World, guest: Principal, start: int = 10) -> ReservationCreated:
    created: ReservationCreated = await world.platform.services["reservation"].create(
        guest, stay(world, start), idempotency_key=None
    )
    assert created.payment_id
    return created


async def hammer(world: World, guest: Principal, payment_id: str) -> None:
    """Completion, sync and the reconciler, repeated and concurrently (two reconcilers)."""
    payments = world.platform.services["payment"]
    for _ in range(2):
        await payments.complete(guest, payment_id)
        await world.settle()
    await asyncio.gather(
        payments.complete(guest, payment_id),
        payments.complete(guest, payment_id),
        payments.sync(payment_id),
        world.platform.jobs.run("reconcile-payments"),
        world.platform.jobs.run("reconcile-payments"),
    )
    await world.settle()
    await asyncio.gather(
        world.platform.jobs.run("reconcile-payments"),
        world.platform.jobs.run("reconcile-payments"),
    )
    await world.settle()


@pytest.mark.parametrize(
    ("paid", "currency"),
    [(1_000, "KRW"), (999_999, "KRW"), (200_000, "USD")],
    ids=["less", "more", "other-currency"],
)
async def test_tampered_payment_is_discrepant_never_confirmed_and_refunded_once(
    world: World, paid: int, currency: str
) -> None:
    guest = world.guest()
    created = await book(world, guest)
    assert created.amount == 200_000
    assert created.payment_id
    await pay_at_checkout(
        world.platform, world.gateway, created.payment_id, amount=paid, currency=currency
    )
    payment = await world.platform.services["payment"].complete(guest, created.payment_id)
    assert payment.status == "DISCREPANT"
    await hammer(world, guest, created.payment_id)

    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "FAILED"
    assert snap.reservation(created.id).confirmed_at is None
    found = snap.payment(created.id)
    assert found is not None
    assert found.status == "DISCREPANT"
    assert world.gateway.cancel_calls == [(created.payment_id, paid)]
    assert [(r.key, r.amount, r.status) for r in snap.refunds_of(created.payment_id)] == [
        (f"discrepant:{created.payment_id}", paid, "DONE")
    ]
    assert all((n.held, n.sold) == (0, 0) for n in snap.nights)
    assert await world.outbox("reservation.reservation_confirmed") == []


async def test_late_payment_after_expiry_is_refunded_exactly_once(pg_world: World) -> None:
    world = pg_world
    guest = world.guest()
    created = await book(world, guest)
    assert created.payment_id
    # The guest opened the checkout page in time (the amount is pre-registered there).
    await world.platform.services["payment"].checkout(created.payment_id)
    late = created.expires_at + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 1}
    await world.settle()

    world.gateway.pay(created.payment_id)  # the guest pays after all
    await hammer(world, guest, created.payment_id)

    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "EXPIRED"
    assert world.gateway.cancel_calls == [(created.payment_id, created.amount)]
    assert len(snap.refunds_of(created.payment_id)) == 1
    assert all((n.held, n.sold) == (0, 0) for n in snap.nights)


async def test_concurrent_completions_of_a_good_payment_confirm_once(pg_world: World) -> None:
    world = pg_world
    guest = world.guest()
    created = await book(world, guest)
    assert created.payment_id
    await pay_at_checkout(world.platform, world.gateway, created.payment_id)
    await hammer(world, guest, created.payment_id)
    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "CONFIRMED"
    assert len(await world.outbox("payment.payment_paid")) == 1
    assert len(await world.outbox("reservation.reservation_confirmed")) == 1
    assert world.gateway.cancel_calls == []


async def test_late_payment_whose_webhook_was_lost_is_refunded_by_the_reconciler(
    world: World,
) -> None:
    """Nobody calls complete and no webhook arrives: the reconciler alone must notice money that
    reached the gateway for a payment we voided, and give it back (ARCHITECTURE: "Paid after
    expiry → automatic refund"; SPEC: the reconciler heals missed webhooks)."""
    guest = world.guest()
    created = await book(world, guest)
    assert created.payment_id
    await world.platform.services["payment"].checkout(created.payment_id)  # opened in time
    late = created.expires_at + timedelta(seconds=1)
    await world.platform.jobs.run("expire-holds", as_of=late)
    await world.settle()
    world.gateway.pay(created.payment_id)  # paid after the expiry

    await world.platform.jobs.run("reconcile-payments")
    await world.settle()

    snap = await assert_consistent(world.platform, world.gateway)
    assert snap.reservation(created.id).status == "EXPIRED"
    assert world.gateway.cancel_calls == [(created.payment_id, created.amount)]


async def test_concurrent_completions_of_a_tampered_payment_refund_it_once(world: World) -> None:
    """Every sync reads the gateway before it locks the payment: one that read before another
    turned the payment DISCREPANT (and asked for the money back) used to see money still to
    return and ask again, under another key: two refunds, two PAYMENT_REFUNDED events, and a
    recorded cancelled amount twice what was paid."""
    guest = world.guest()
    created = await book(world, guest)
    assert created.payment_id
    paid = 150_000
    await pay_at_checkout(world.platform, world.gateway, created.payment_id, amount=paid)
    payments = world.platform.services["payment"]
    await asyncio.gather(
        *(payments.complete(guest, created.payment_id) for _ in range(4)),
        *(payments.sync(created.payment_id) for _ in range(4)),
    )
    await world.settle()
    await hammer(world, guest, created.payment_id)

    snap = await assert_consistent(world.platform, world.gateway)
    found = snap.payment(created.id)
    assert found is not None
    assert found.status == "DISCREPANT"
    assert found.cancelled_amount == paid
    assert [(r.amount, r.status) for r in snap.refunds_of(created.payment_id)] == [(paid, "DONE")]
    assert world.gateway.cancel_calls == [(created.payment_id, paid)]
    assert len(await world.outbox("payment.payment_refunded")) == 1
