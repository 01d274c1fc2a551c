"""The ledger of lots at the service layer, on both database backends: lots with expiry, spends
earliest-expiry-first, holds and refunds tied to the lots they came from, expired points."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from haot.bootstrap import build_platform
from haot.platform.container import Platform
from haot.platform.errors import InvalidInput
from haot.platform.settings import Settings
from haot.point.models import Lot
from haot.point.schemas import DeductionCreate, GrantCreate
from haot.point.service import InsufficientPoints, PointService
from tests.point.conftest import (
    Clock,
    allocations_of,
    entries_of,
    grant,
    hold_of,
    in_unit,
    ledger_total,
    lots_of,
    user,
)

DAY = timedelta(days=1)


async def remaining(points: PointService, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
    return {lot.id: lot.remaining for lot in await lots_of(points, user_id)}


async def assert_books_balance(points: PointService, user_id: uuid.UUID) -> None:
    """History total == what the lots still hold + what is held for reservations; no lot below 0."""
    lots = await lots_of(points, user_id)
    assert all(0 <= lot.remaining <= lot.amount for lot in lots)
    held = (await points.balance(user_id)).held
    assert await ledger_total(points, user_id) == sum(lot.remaining for lot in lots) + held


async def test_a_grant_is_a_lot_that_expires_after_a_year_by_default(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    entry = await points.grant(GrantCreate(user_id=guest, amount=5_000, reason="welcome"))
    (lot,) = await lots_of(points, guest)
    assert (lot.kind, lot.amount, lot.remaining) == ("ADMIN_GRANT", 5_000, 5_000)
    assert lot.expires_at == clock.now + timedelta(days=365)
    (row,) = await entries_of(points, guest)
    assert (row.id, row.type, row.amount, row.lot_id) == (entry.id, "ADMIN_GRANT", 5_000, lot.id)
    balance = await points.balance(guest)
    assert (balance.balance, balance.held, balance.expiring_30d) == (5_000, 0, 0)


async def test_the_expiry_period_is_configurable_and_an_explicit_expiry_is_kept(
    settings: Settings, clock: Clock
) -> None:
    platform = build_platform(
        settings.model_copy(update={"point_expiry_days": 30}), contexts=("point",)
    )
    await platform.start()
    try:
        points: PointService = platform.services["point"]
        guest = user()
        await grant(points, guest, 100)
        await in_unit(
            points,
            lambda unit: points.earn(
                unit, user_id=guest, reservation_id=uuid.uuid4(), paid_amount=200_000
            ),
        )
        chosen = clock.now + timedelta(days=7)
        await grant(points, guest, 300, expires_at=chosen)
        lots = await lots_of(points, guest)
        assert sorted((lot.kind, lot.amount, lot.expires_at) for lot in lots) == sorted(
            [
                ("ADMIN_GRANT", 100, clock.now + timedelta(days=30)),
                ("EARN", 2_000, clock.now + timedelta(days=30)),
                ("ADMIN_GRANT", 300, chosen),
            ]
        )
        # Everything expires within 30 days now.
        assert (await points.balance(guest)).expiring_30d == 2_400
        with pytest.raises(InvalidInput):
            await grant(points, guest, 1, expires_at=clock.now - timedelta(seconds=1))
    finally:
        await platform.stop()


async def test_spending_takes_the_earliest_expiring_lots_first(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    late = await grant(points, guest, 100, expires_at=clock.now + 300 * DAY)
    soon = await grant(points, guest, 50, expires_at=clock.now + 10 * DAY)
    middle = await grant(points, guest, 70, expires_at=clock.now + 100 * DAY)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=130)
    assert await allocations_of(points, reservation) == {soon: 50, middle: 70, late: 10}
    assert await remaining(points, guest) == {late: 90, soon: 0, middle: 0}
    balance = await points.balance(guest)
    assert (balance.balance, balance.held) == (90, 130)

    await points.deduct(DeductionCreate(user_id=guest, amount=40, reason="correction"))
    assert await remaining(points, guest) == {late: 50, soon: 0, middle: 0}
    await assert_books_balance(points, guest)


async def test_a_hold_is_spent_on_confirmation_and_a_refund_restores_the_same_lots(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    late = await grant(points, guest, 100, expires_at=clock.now + 300 * DAY)
    soon = await grant(points, guest, 50, expires_at=clock.now + 10 * DAY)
    middle = await grant(points, guest, 70, expires_at=clock.now + 100 * DAY)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=130)

    assert await in_unit(points, lambda unit: points.spend(unit, reservation)) is True
    assert await in_unit(points, lambda unit: points.spend(unit, reservation)) is False
    (use,) = await entries_of(points, guest, "USE")
    assert (use.amount, use.reservation_id) == (-130, reservation)
    assert (await points.balance(guest)).held == 0

    # A partial refund goes back into the longest-lived lots the points came from.
    assert await in_unit(points, lambda unit: points.refund(unit, reservation, 40)) == 40
    assert await remaining(points, guest) == {late: 100, soon: 0, middle: 30}
    assert await allocations_of(points, reservation) == {soon: 50, middle: 40, late: 0}
    # Once per reservation: a redelivered cancellation refunds nothing more.
    assert await in_unit(points, lambda unit: points.refund(unit, reservation, 40)) == 0
    (cancel_use,) = await entries_of(points, guest, "CANCEL_USE")
    assert (cancel_use.amount, cancel_use.reservation_id) == (40, reservation)
    assert len(await lots_of(points, guest)) == 3  # no new lot: the same lots took them back
    assert (await points.balance(guest)).balance == 130
    await assert_books_balance(points, guest)


async def test_a_refund_never_exceeds_what_was_spent(points: PointService) -> None:
    guest = user()
    lot = await grant(points, guest, 1_000)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=300)
    await in_unit(points, lambda unit: points.spend(unit, reservation))
    assert await in_unit(points, lambda unit: points.refund(unit, reservation, 5_000)) == 300
    assert await remaining(points, guest) == {lot: 1_000}
    await assert_books_balance(points, guest)


async def test_a_release_puts_every_held_point_back_once(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    first = await grant(points, guest, 60, expires_at=clock.now + 5 * DAY)
    second = await grant(points, guest, 60, expires_at=clock.now + 50 * DAY)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=100)
    assert await remaining(points, guest) == {first: 0, second: 20}

    assert await in_unit(points, lambda unit: points.release(unit, reservation)) is True
    assert await in_unit(points, lambda unit: points.release(unit, reservation)) is False
    assert await remaining(points, guest) == {first: 60, second: 60}
    # A released hold is neither spent nor refunded later.
    assert await in_unit(points, lambda unit: points.spend(unit, reservation)) is False
    assert await in_unit(points, lambda unit: points.refund(unit, reservation, 100)) == 0
    assert [e.type for e in await entries_of(points, guest)] == ["ADMIN_GRANT", "ADMIN_GRANT"]
    balance = await points.balance(guest)
    assert (balance.balance, balance.held) == (120, 0)
    await assert_books_balance(points, guest)


@pytest.mark.parametrize("way", ["refund", "release"])
async def test_points_of_a_lot_that_expired_meanwhile_come_back_in_a_restored_lot_with_grace(
    points: PointService, clock: Clock, settings: Settings, way: str
) -> None:
    guest = user()
    short = await grant(points, guest, 100, expires_at=clock.now + DAY)
    long = await grant(points, guest, 100, expires_at=clock.now + 60 * DAY)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=150)
    if way == "refund":
        await in_unit(points, lambda unit: points.spend(unit, reservation))

    clock.advance(2 * DAY)
    if way == "refund":
        assert await in_unit(points, lambda unit: points.refund(unit, reservation, 150)) == 150
    else:
        assert await in_unit(points, lambda unit: points.release(unit, reservation)) is True

    lots = {lot.id: lot for lot in await lots_of(points, guest)}
    (restored,) = [lot for lot in lots.values() if lot.id not in (short, long)]
    assert restored.kind == "RESTORED"
    assert (restored.amount, restored.remaining) == (100, 100)
    assert restored.expires_at == clock.now + timedelta(days=settings.point_refund_grace_days)
    assert lots[short].remaining == 0  # the expired lot's books stay closed
    assert lots[long].remaining == 100  # the live lot took its 50 back itself
    assert (await points.balance(guest)).balance == 200
    # Nothing left for the expiry job: the restored points are not expired again.
    assert (await points.expire(now=clock.now))["points"] == 0
    assert (await points.balance(guest)).balance == 200
    await assert_books_balance(points, guest)


async def test_expired_points_are_not_spendable_and_the_job_writes_them_off(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    old = await grant(points, guest, 100, expires_at=clock.now + DAY)
    fresh = await grant(points, guest, 30, expires_at=clock.now + 90 * DAY)
    assert (await points.balance(guest)).balance == 130

    clock.advance(DAY)  # expiring exactly now counts as expired
    assert (await points.balance(guest)).balance == 30  # before the job ran
    with pytest.raises(InsufficientPoints):
        await points.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=31)
    assert await points.expire(now=clock.now) == {"lots": 1, "points": 100, "dry_run": 0}
    assert await points.expire(now=clock.now) == {"lots": 0, "points": 0, "dry_run": 0}
    (expire,) = await entries_of(points, guest, "EXPIRE")
    assert (expire.amount, expire.lot_id) == (-100, old)
    assert await remaining(points, guest) == {old: 0, fresh: 30}
    await assert_books_balance(points, guest)


async def test_the_balance_never_goes_below_zero(points: PointService, platform: Platform) -> None:
    guest = user()
    lot = await grant(points, guest, 100)
    with pytest.raises(InsufficientPoints):
        await points.deduct(DeductionCreate(user_id=guest, amount=101, reason="too much"))
    with pytest.raises(InsufficientPoints):
        await points.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=101)
    assert await remaining(points, guest) == {lot: 100}
    assert [e.type for e in await entries_of(points, guest)] == ["ADMIN_GRANT"]

    await points.deduct(DeductionCreate(user_id=guest, amount=100, reason="all of it"))
    assert (await points.balance(guest)).balance == 0
    with pytest.raises(InsufficientPoints):
        await points.deduct(DeductionCreate(user_id=guest, amount=1, reason="one more"))

    # And the database itself refuses a negative lot, whatever the code does.
    async with platform.uow_factory("point")() as unit:
        with pytest.raises(IntegrityError):
            await unit.session.execute(update(Lot).where(Lot.id == lot).values(remaining=-1))
    await assert_books_balance(points, guest)


async def test_holding_twice_for_one_reservation_holds_once(points: PointService) -> None:
    guest = user()
    lot = await grant(points, guest, 100)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=70)
    await points.hold(user_id=guest, reservation_id=reservation, amount=70)
    assert await remaining(points, guest) == {lot: 30}
    assert (await points.balance(guest)).held == 70


async def test_a_release_that_overtakes_its_hold_refuses_the_late_hold(
    points: PointService,
) -> None:
    guest = user()
    lot = await grant(points, guest, 100)
    reservation = uuid.uuid4()
    assert await in_unit(points, lambda unit: points.release(unit, reservation)) is False
    with pytest.raises(InsufficientPoints):
        await points.hold(user_id=guest, reservation_id=reservation, amount=50)
    assert await remaining(points, guest) == {lot: 100}
    hold = await hold_of(points, reservation)
    assert hold is not None
    assert hold.status == "RELEASED"


async def test_a_stay_earns_once_per_reservation(points: PointService, clock: Clock) -> None:
    guest = user()
    reservation = uuid.uuid4()
    for _ in range(2):
        await in_unit(
            points,
            lambda unit: points.earn(
                unit, user_id=guest, reservation_id=reservation, paid_amount=170_000
            ),
        )
    (lot,) = await lots_of(points, guest)
    assert (lot.kind, lot.amount, lot.source) == ("EARN", 1_700, f"earn:{reservation}")
    assert lot.expires_at == clock.now + timedelta(days=365)
    (earn,) = await entries_of(points, guest, "EARN")
    assert (earn.amount, earn.reservation_id, earn.lot_id) == (1_700, reservation, lot.id)
    # Nothing paid, nothing earned (and no empty lot).
    await in_unit(
        points,
        lambda unit: points.earn(unit, user_id=guest, reservation_id=uuid.uuid4(), paid_amount=0),
    )
    assert len(await lots_of(points, guest)) == 1
