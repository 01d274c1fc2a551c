"""``haot_points_moved_total{type}``: every ledger entry moves its type's counter by the points it
moved, once its unit of work has committed (a unit that rolls back moves nothing)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from haot.point.domain import EntryType
from haot.point.schemas import DeductionCreate
from haot.point.service import POINTS_MOVED, InsufficientPoints, PointService
from tests.point.conftest import Clock, grant, in_unit, user

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def moved() -> dict[str, float]:
    return {t.value: POINTS_MOVED.labels(t.value)._value.get() for t in EntryType}


def delta(before: dict[str, float]) -> dict[str, float]:
    after = moved()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


async def test_every_entry_type_moves_its_counter_by_the_points_it_moved(
    points: PointService, clock: Clock
) -> None:
    guest, reservation = user(), uuid.uuid4()
    before = moved()

    await grant(points, guest, 1_000)
    await points.deduct(DeductionCreate(user_id=guest, amount=100, reason="correction"))
    await points.hold(user_id=guest, reservation_id=reservation, amount=300)
    assert delta(before) == {"ADMIN_GRANT": 1_000, "ADMIN_DEDUCT": 100}  # a hold is no entry

    await in_unit(points, lambda unit: points.spend(unit, reservation))
    await in_unit(points, lambda unit: points.refund(unit, reservation, 120))
    await in_unit(
        points,
        lambda unit: points.earn(
            unit, user_id=guest, reservation_id=uuid.uuid4(), paid_amount=100_000
        ),
    )
    earned = delta(before)["EARN"]
    assert earned > 0
    clock.advance(timedelta(days=400))
    await points.expire(now=clock.now)

    assert delta(before) == {
        "ADMIN_GRANT": 1_000,
        "ADMIN_DEDUCT": 100,
        "USE": 300,
        "CANCEL_USE": 120,
        "EARN": earned,
        "EXPIRE": 1_000 - 100 - 300 + 120 + earned,
    }


async def test_an_entry_whose_unit_does_not_commit_moves_nothing(points: PointService) -> None:
    guest = user()
    await grant(points, guest, 50)
    before = moved()

    with pytest.raises(InsufficientPoints):
        await points.deduct(DeductionCreate(user_id=guest, amount=80, reason="too much"))
    async with points._uow() as unit:  # an entry written, then rolled back
        await points.earn(unit, user_id=guest, reservation_id=uuid.uuid4(), paid_amount=100_000)

    assert delta(before) == {}
