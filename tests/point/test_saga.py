"""Points in the booking saga, on both database backends: held at creation, spent on confirmation,
released on failure or expiry, refunded by policy on cancellation, earned on completion; every
reaction applied once however often its event is delivered."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from haot.platform.auth import Principal
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict
from haot.platform.ids import new_id
from haot.reservation import events
from tests.point.conftest import Saga, entries_of, grant, hold_of
from tests.support.gateway import pay_at_checkout

START = 10  # days ahead: the default policy refunds 100% at 7+ days, 50% at 3+, nothing after


async def redeliver(saga: Saga, event_type: str, reservation_id: Any) -> None:
    """Deliver the reservation's ``event_type`` events to the point consumer again, twice over
    (the transport is at-least-once: a relay crash after publishing re-publishes the batch), and
    once more under new event ids, which the inbox cannot recognise: the point use cases must be
    idempotent themselves."""
    delivered = await saga.events(event_type, reservation_id)
    assert delivered, f"no {event_type} event for {reservation_id}"
    consumer = saga.point_consumer()
    await consumer.handle_batch(delivered + delivered)
    await consumer.handle_batch(delivered)
    await consumer.handle_batch([replace(event, id=new_id()) for event in delivered])


async def booked_with_points(
    saga: Saga, *, points: int = 30_000, start: int = START, balance: int = 50_000
) -> tuple[Principal, Any]:
    guest = saga.guest()
    await grant(saga.points, guest.user_id, balance)
    created = await saga.book(guest, start=start, points=points)
    return guest, created


async def test_points_are_held_at_creation_and_spent_once_on_confirmation(saga: Saga) -> None:
    guest, created = await booked_with_points(saga)
    assert (created.status, created.amount) == ("PENDING", 170_000)
    read = await saga.reservations.get_for(guest, created.id)
    assert read.points_used == 30_000
    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (20_000, 30_000)
    assert await entries_of(saga.points, guest.user_id, "USE") == []  # held, not used yet

    await saga.pay(guest, created)
    assert (await saga.reservations.get_for(guest, created.id)).status == "CONFIRMED"
    await redeliver(saga, events.ReservationConfirmed.TYPE, created.id)

    (use,) = await entries_of(saga.points, guest.user_id, "USE")
    assert (use.amount, use.reservation_id) == (-30_000, created.id)
    hold = await hold_of(saga.points, created.id)
    assert hold is not None
    assert hold.status == "SPENT"
    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (20_000, 0)


async def _tampered_payment(saga: Saga, guest: Principal, created: Any) -> str:
    await pay_at_checkout(saga.platform, saga.gateway, created.payment_id, amount=1_000)
    await saga.payments.complete(guest, created.payment_id)
    await saga.settle()
    return events.ReservationFailed.TYPE


async def _hold_expired(saga: Saga, guest: Principal, created: Any) -> str:
    result = await saga.platform.jobs.run(
        "expire-holds", as_of=created.expires_at + timedelta(seconds=1)
    )
    assert result == {"expired": 1}
    await saga.settle()
    return events.ReservationExpired.TYPE


async def _cancelled_while_pending(saga: Saga, guest: Principal, created: Any) -> str:
    await saga.reservations.cancel(guest, created.id, by_host=False, reason="changed my mind")
    await saga.settle()
    return events.ReservationCancelled.TYPE


@pytest.mark.parametrize(
    ("give_up", "status"),
    [
        (_tampered_payment, "FAILED"),
        (_hold_expired, "EXPIRED"),
        (_cancelled_while_pending, "CANCELLED"),
    ],
    ids=["failed", "expired", "cancelled-pending"],
)
async def test_points_are_released_once_when_the_stay_will_not_happen(
    saga: Saga, give_up: Any, status: str
) -> None:
    guest, created = await booked_with_points(saga)
    event_type = await give_up(saga, guest, created)
    assert (await saga.reservations.get_for(guest, created.id)).status == status
    await redeliver(saga, event_type, created.id)

    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (50_000, 0)
    hold = await hold_of(saga.points, created.id)
    assert hold is not None
    assert hold.status == "RELEASED"
    # Nothing was used, so the history shows the grant alone.
    assert [e.type for e in await entries_of(saga.points, guest.user_id)] == ["ADMIN_GRANT"]


@pytest.mark.parametrize(
    ("start", "by_host", "refunded"),
    [
        (5, False, 15_000),  # guest, 5 days before: the 50% tier
        (START, False, 30_000),  # guest, 10 days before: the 100% tier
        (1, False, 0),  # guest, the day before: the 0% tier
        (2, True, 30_000),  # host: always in full
    ],
    ids=["guest-50pct", "guest-100pct", "guest-0pct", "host"],
)
async def test_a_cancelled_stay_refunds_points_by_policy_once(
    saga: Saga, start: int, by_host: bool, refunded: int
) -> None:
    guest, created = await booked_with_points(saga, start=start)
    await saga.pay(guest, created)
    who = saga.host if by_host else guest
    cancelled = await saga.reservations.cancel(who, created.id, by_host=by_host, reason="")
    assert cancelled.status == "CANCELLED"
    await saga.settle()
    await redeliver(saga, events.ReservationCancelled.TYPE, created.id)

    refunds = await entries_of(saga.points, guest.user_id, "CANCEL_USE")
    assert [(e.amount, e.reservation_id) for e in refunds] == (
        [(refunded, created.id)] if refunded else []
    )
    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (20_000 + refunded, 0)


async def test_a_completed_stay_earns_one_percent_of_the_paid_amount_once(saga: Saga) -> None:
    guest, created = await booked_with_points(saga, start=1)
    await saga.pay(guest, created)
    # Check-out is 3 days ahead: run the job as of the day after.
    result = await saga.platform.jobs.run("complete-stays", as_of=utcnow() + timedelta(days=4))
    assert result == {"completed": 1}
    await saga.settle()
    assert (await saga.reservations.get_for(guest, created.id)).status == "COMPLETED"
    await redeliver(saga, events.ReservationCompleted.TYPE, created.id)

    (earn,) = await entries_of(saga.points, guest.user_id, "EARN")
    assert (earn.amount, earn.reservation_id) == (1_700, created.id)  # 1% of 170,000 paid
    assert (await saga.points.balance(guest.user_id)).balance == 20_000 + 1_700


async def test_a_stay_paid_entirely_with_points_is_spent_and_earns_nothing(saga: Saga) -> None:
    guest, created = await booked_with_points(saga, points=200_000, balance=250_000, start=1)
    assert (created.status, created.amount, created.payment_id) == ("CONFIRMED", 0, None)
    await saga.settle()
    (use,) = await entries_of(saga.points, guest.user_id, "USE")
    assert use.amount == -200_000
    await saga.platform.jobs.run("complete-stays", as_of=utcnow() + timedelta(days=4))
    await saga.settle()
    assert await entries_of(saga.points, guest.user_id, "EARN") == []
    assert (await saga.points.balance(guest.user_id)).balance == 50_000


async def test_a_booking_asking_more_points_than_the_balance_holds_nothing(saga: Saga) -> None:
    guest = saga.guest()
    await grant(saga.points, guest.user_id, 10_000)
    # The saga refuses before holding anything; one transaction refuses at the hold and rolls
    # back. Either way the client sees the same stable code.
    with pytest.raises(Conflict) as refused:
        await saga.book(guest, points=10_001)
    assert refused.value.code == "insufficient_points"
    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (10_000, 0)
