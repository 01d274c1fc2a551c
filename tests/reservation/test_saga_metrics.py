"""What the booking alerts of deploy/prometheus read: every booking saga counted by outcome
(``haot_booking_sagas_total``), and how long the most overdue PENDING reservation has been past
its hold's expiry (``haot_reservation_pending_overdue_seconds``, measured at each scrape)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from haot.platform.clock import utcnow
from haot.platform.errors import ServiceUnavailable
from haot.reservation.models import Reservation
from tests.reservation.conftest import World
from tests.reservation.test_saga_failures import (
    BrokenPayments,
    PointsRefused,
    PointsThatCannotBeHeld,
    saga,
    stay,
)


def sagas(outcome: str) -> float:
    return REGISTRY.get_sample_value("haot_booking_sagas_total", {"outcome": outcome}) or 0.0


def overdue() -> float | None:
    return REGISTRY.get_sample_value("haot_reservation_pending_overdue_seconds")


class PaymentsUnavailable:
    async def create_payment(self, **_: object) -> tuple[str, str]:
        raise ServiceUnavailable("the payment context does not answer")


async def test_every_saga_is_counted_by_its_outcome(world: World) -> None:
    before = {o: sagas(o) for o in ("completed", "refused", "failed")}

    await saga(world).create(world.guest(), stay(world), idempotency_key=None)
    with pytest.raises(PointsRefused):
        await saga(world, points=PointsThatCannotBeHeld()).create(
            world.guest(), stay(world, start=20, points=5_000), idempotency_key=None
        )
    with pytest.raises(RuntimeError):
        await saga(world, payments=BrokenPayments()).create(
            world.guest(), stay(world, start=30), idempotency_key=None
        )
    with pytest.raises(ServiceUnavailable):
        await saga(world, payments=PaymentsUnavailable()).create(
            world.guest(), stay(world, start=40), idempotency_key=None
        )
    # A booking in one transaction is no saga: its failures roll back and show as its answer.
    await saga(world, one_transaction=True).create(
        world.guest(), stay(world, start=50), idempotency_key=None
    )

    assert {o: sagas(o) - before[o] for o in before} == {
        "completed": 1,
        "refused": 1,  # a step said no (4xx)
        "failed": 2,  # a crash, and a context that did not answer (5xx)
    }


async def test_overdue_pending_holds_are_measured_at_each_scrape(world: World) -> None:
    await world.platform.measure_for_scrape()
    assert overdue() == 0.0

    created = await saga(world).create(world.guest(), stay(world), idempotency_key=None)
    await world.platform.measure_for_scrape()
    assert overdue() == 0.0  # PENDING, but its hold has not expired yet

    async with world.platform.uow_factory("reservation")() as uow:
        await uow.session.execute(
            update(Reservation)
            .where(Reservation.id == created.id)
            .values(expires_at=utcnow() - timedelta(minutes=10))
        )
        await uow.commit()
    await world.platform.measure_for_scrape()
    measured = overdue()
    assert measured is not None
    assert 600 <= measured < 660

    await world.platform.jobs.run("expire-holds")  # gives it up: nothing overdue any more
    await world.platform.measure_for_scrape()
    assert overdue() == 0.0
