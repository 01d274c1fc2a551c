"""Races on one user's points, on PostgreSQL (real row locks): concurrent spends never overdraw,
and holds racing releases never deadlock."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import pytest

from haot.point.schemas import DeductionCreate
from haot.point.service import InsufficientPoints, PointService
from tests.point.conftest import (
    Clock,
    grant,
    in_unit,
    ledger_total,
    lots_of,
    postgres_only,
    user,
)

pytestmark = [postgres_only, pytest.mark.postgres, pytest.mark.slow]

CONCURRENT = 20
DAY = timedelta(days=1)


def outcomes(results: list[object]) -> tuple[int, int]:
    """(successes, refusals); anything else (a deadlock, a 500) fails the test."""
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, InsufficientPoints)
    ]
    assert unexpected == [], unexpected
    refused = sum(isinstance(r, InsufficientPoints) for r in results)
    return len(results) - refused, refused


async def release(points: PointService, reservation: uuid.UUID) -> object:
    return await in_unit(points, lambda unit: points.release(unit, reservation))


async def three_lots(points: PointService, guest: uuid.UUID, clock: Clock) -> int:
    await grant(points, guest, 400, expires_at=clock.now + 100 * DAY)
    await grant(points, guest, 350, expires_at=clock.now + 10 * DAY)
    await grant(points, guest, 250, expires_at=clock.now + 200 * DAY)
    return 1_000


async def test_twenty_concurrent_holds_of_the_whole_balance_let_exactly_one_through(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    full = await three_lots(points, guest, clock)
    assert (await points.balance(guest)).balance == full
    results = await asyncio.gather(
        *(
            points.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=full)
            for _ in range(CONCURRENT)
        ),
        return_exceptions=True,
    )
    assert outcomes(results) == (1, CONCURRENT - 1)
    balance = await points.balance(guest)
    assert (balance.balance, balance.held) == (0, full)
    assert all(lot.remaining == 0 for lot in await lots_of(points, guest))


async def test_twenty_concurrent_deductions_of_the_whole_balance_let_exactly_one_through(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    full = await three_lots(points, guest, clock)
    results = await asyncio.gather(
        *(
            points.deduct(DeductionCreate(user_id=guest, amount=full, reason="race"))
            for _ in range(CONCURRENT)
        ),
        return_exceptions=True,
    )
    assert outcomes(results) == (1, CONCURRENT - 1)
    assert (await points.balance(guest)).balance == 0
    assert await ledger_total(points, guest) == 0  # one ADMIN_DEDUCT, not twenty


async def test_concurrent_partial_holds_take_exactly_what_there_is(
    points: PointService, clock: Clock
) -> None:
    guest = user()
    await three_lots(points, guest, clock)  # 1,000 points: room for 33 holds of 30
    results = await asyncio.gather(
        *(points.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=30) for _ in range(40)),
        return_exceptions=True,
    )
    assert outcomes(results) == (33, 7)
    balance = await points.balance(guest)
    assert (balance.balance, balance.held) == (10, 990)


async def test_holds_racing_releases_of_the_same_user_never_deadlock(
    points: PointService, clock: Clock
) -> None:
    """Lots granted in the reverse order of their expiry: a hold locks them by expiry, and a
    release must lock them in that same order, or the two deadlock."""
    for _ in range(3):
        guest = user()
        for i in range(6):
            await grant(points, guest, 1_000, expires_at=clock.now + (100 - 10 * i) * DAY)
        held = [uuid.uuid4() for _ in range(15)]
        for reservation in held:
            await points.hold(user_id=guest, reservation_id=reservation, amount=350)

        racers = [release(points, r) for r in held] + [
            points.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=50) for _ in range(15)
        ]
        random.shuffle(racers)
        results = await asyncio.gather(*racers, return_exceptions=True)
        assert outcomes(results) == (30, 0)
        balance = await points.balance(guest)
        assert (balance.balance, balance.held) == (6_000 - 750, 750)
        assert await ledger_total(points, guest) == 6_000


async def test_one_reservation_held_by_racing_retries_holds_once(
    points: PointService, clock: Clock
) -> None:
    """A split deployment's reservation context retries a hold whose answer it did not get
    while the first try is still running: every try succeeds and the points are held once."""
    guest = user()
    full = await three_lots(points, guest, clock)
    reservation = uuid.uuid4()
    results = await asyncio.gather(
        *(
            points.hold(user_id=guest, reservation_id=reservation, amount=300)
            for _ in range(CONCURRENT)
        ),
        return_exceptions=True,
    )
    assert outcomes(results) == (CONCURRENT, 0)
    balance = await points.balance(guest)
    assert (balance.balance, balance.held) == (full - 300, 300)
    assert await ledger_total(points, guest) == full
