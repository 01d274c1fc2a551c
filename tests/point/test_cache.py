"""The balance is cached in Redis, and the cache never answers an old balance after a change:
each test reads (filling the cache), changes something, and reads again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.point.models import Hold, Lot
from haot.point.schemas import BalanceRead, DeductionCreate
from haot.point.service import PointService
from tests.point.conftest import Clock, Saga, grant, in_unit, lots_of, user

DAY = timedelta(days=1)


async def truth(points: PointService, user_id: uuid.UUID, now: datetime) -> BalanceRead:
    """The balance computed from the rows, past any cache."""
    lots = [lot for lot in await lots_of(points, user_id) if lot.expires_at > now]
    async with points._uow() as unit:
        holds = (
            await unit.session.scalars(
                select(Hold).where(Hold.user_id == user_id, Hold.status == "HELD")
            )
        ).all()
    return BalanceRead(
        balance=sum(lot.remaining for lot in lots),
        held=sum(hold.amount for hold in holds),
        expiring_30d=sum(lot.remaining for lot in lots if lot.expires_at <= now + 30 * DAY),
    )


async def test_the_balance_is_served_from_redis_until_it_changes(
    points: PointService, platform: Platform
) -> None:
    guest = user()
    lot = await grant(points, guest, 100)
    assert (await points.balance(guest)).balance == 100
    # Behind the service's back: the cached answer stands (so the cache really is used) ...
    async with platform.uow_factory("point")() as unit:
        await unit.session.execute(update(Lot).where(Lot.id == lot).values(remaining=40))
        await unit.commit()
    assert (await points.balance(guest)).balance == 100
    # ... until a change through the service, which invalidates it.
    await grant(points, guest, 10)
    assert (await points.balance(guest)).balance == 50


Change = Callable[[PointService, uuid.UUID, uuid.UUID, Clock], Awaitable[object]]


async def _grant(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await grant(p, u, 25)


async def _deduct(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await p.deduct(DeductionCreate(user_id=u, amount=25, reason="correction"))


async def _hold(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await p.hold(user_id=u, reservation_id=uuid.uuid4(), amount=25)


async def _release(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await in_unit(p, lambda unit: p.release(unit, r))


async def _spend(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await in_unit(p, lambda unit: p.spend(unit, r))


async def _refund(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    await in_unit(p, lambda unit: p.spend(unit, r))
    await p.balance(u)  # cached again after the spend
    return await in_unit(p, lambda unit: p.refund(unit, r, 10))


async def _earn(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await in_unit(
        p, lambda unit: p.earn(unit, user_id=u, reservation_id=uuid.uuid4(), paid_amount=90_000)
    )


async def _expire(p: PointService, u: uuid.UUID, r: uuid.UUID, c: Clock) -> object:
    return await p.expire(now=c.now + 400 * DAY)


@pytest.mark.parametrize(
    "change",
    [_grant, _deduct, _hold, _release, _spend, _refund, _earn, _expire],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_every_change_is_visible_on_the_next_read(
    points: PointService, clock: Clock, change: Change
) -> None:
    guest = user()
    await grant(points, guest, 100, expires_at=clock.now + 200 * DAY)
    await grant(points, guest, 40, expires_at=clock.now + 20 * DAY)
    reservation = uuid.uuid4()
    await points.hold(user_id=guest, reservation_id=reservation, amount=30)
    before = await points.balance(guest)
    assert before == await truth(points, guest, clock.now)

    await change(points, guest, reservation, clock)

    after = await points.balance(guest)
    assert after != before
    assert after == await truth(points, guest, clock.now)


async def test_a_balance_read_after_a_reservation_holds_points_is_new(saga: Saga) -> None:
    guest = saga.guest()
    await grant(saga.points, guest.user_id, 50_000)
    assert (await saga.points.balance(guest.user_id)).balance == 50_000
    await saga.book(guest, points=30_000)
    balance = await saga.points.balance(guest.user_id)
    assert (balance.balance, balance.held) == (20_000, 30_000)


async def test_a_balance_read_after_the_expiry_job_is_new(saga: Saga) -> None:
    guest = saga.guest()
    now = utcnow()
    await grant(saga.points, guest.user_id, 700, expires_at=now + 3 * DAY)
    await grant(saga.points, guest.user_id, 300, expires_at=now + 90 * DAY)
    assert (await saga.points.balance(guest.user_id)).balance == 1_000
    result = await saga.platform.jobs.run("expire-points", as_of=now + 4 * DAY)
    assert result == {"lots": 1, "points": 700, "dry_run": 0}
    assert (await saga.points.balance(guest.user_id)).balance == 300


async def test_a_cached_balance_drops_points_the_moment_they_expire(
    points: PointService, clock: Clock
) -> None:
    """No change and no job: time alone expires a lot, and the cache must not outlive it."""
    guest = user()
    await grant(points, guest, 100, expires_at=clock.now + timedelta(hours=1))
    await grant(points, guest, 5, expires_at=clock.now + 300 * DAY)
    assert (await points.balance(guest)).balance == 105
    clock.advance(timedelta(minutes=59))
    assert (await points.balance(guest)).balance == 105
    clock.advance(timedelta(minutes=1))
    assert (await points.balance(guest)).balance == 5


async def test_a_cached_balance_counts_points_entering_the_30_day_window(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    await grant(points, guest, 100, expires_at=clock.now + 31 * DAY)
    assert (await points.balance(guest)).expiring_30d == 0
    clock.advance(DAY)
    assert (await points.balance(guest)).expiring_30d == 100
