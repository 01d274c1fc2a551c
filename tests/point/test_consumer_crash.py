"""The point consumer dies or fails in the middle of a batch of completed stays; the batch is
delivered again; every stay has earned exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from haot.platform.container import Platform
from haot.platform.events import Event
from haot.platform.inbox import Consumer, InboxEntry
from haot.point.models import Entry, Lot
from haot.point.service import PointService
from haot.reservation import events

BATCH = 6


class Killed(BaseException):
    """The process dying mid-batch: nothing in the consumer may catch it."""


def completed_stays(count: int = BATCH) -> list[Event]:
    return [
        Event.of(
            events.ReservationCompleted(
                reservation_id=uuid.uuid4(),
                user_id=uuid.uuid4(),
                host_id=uuid.uuid4(),
                lodging_id=uuid.uuid4(),
                room_type_id=uuid.uuid4(),
                check_in=date(2026, 12, 1),
                check_out=date(2026, 12, 3),
                amount=100_000 * (i + 1),
                subtotal=100_000 * (i + 1),
                points_used=0,
                user_coupon_id=None,
                payment_id=f"pay-{i}",
                status="COMPLETED",
            )
        )
        for i in range(count)
    ]


def consumer_of(platform: Platform) -> Consumer:
    return next(c for c in platform.consumers if c.name == "point.reservations")


def fail_on_call(
    points: PointService, monkeypatch: pytest.MonkeyPatch, n: int, exc: Callable[[], BaseException]
) -> list[int]:
    """Make the ``n``-th call of ``earn`` raise (once); returns the call log."""
    real = points.earn
    calls: list[int] = []

    async def earn(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == n:
            raise exc()
        return await real(*args, **kwargs)

    monkeypatch.setattr(points, "earn", earn)
    return calls


async def earns(platform: Platform) -> Counter[uuid.UUID | None]:
    async with platform.uow_factory("point")() as unit:
        rows = (await unit.session.scalars(select(Entry).where(Entry.type == "EARN"))).all()
        lots = (await unit.session.execute(select(func.count()).select_from(Lot))).scalar_one()
        assert lots == len(rows)  # one lot per EARN entry, no orphan either way
    return Counter(row.reservation_id for row in rows)


async def inbox_rows(platform: Platform) -> int:
    async with platform.uow_factory("point")() as unit:
        statement = select(func.count()).where(InboxEntry.consumer == "point.reservations")
        return int((await unit.session.execute(statement)).scalar_one())


def exactly_once(batch: list[Event]) -> Counter[uuid.UUID | None]:
    return Counter(uuid.UUID(e.payload["reservation_id"]) for e in batch)


async def test_a_consumer_killed_mid_batch_loses_and_duplicates_nothing(
    platform: Platform, points: PointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = completed_stays()
    consumer = consumer_of(platform)
    calls = fail_on_call(points, monkeypatch, 2, Killed)
    with pytest.raises(Killed):
        await consumer.handle_batch(batch)
    assert len(calls) == 2  # it died on the second event of the batch
    # The first event's effect died with the transaction: nothing half-applied.
    assert await earns(platform) == Counter()
    assert await inbox_rows(platform) == 0

    monkeypatch.undo()
    await consumer.handle_batch(batch)  # the broker delivers the uncommitted batch again
    await consumer.handle_batch(batch)  # and, at least once, once more
    assert await earns(platform) == exactly_once(batch)
    assert await inbox_rows(platform) == BATCH
    per_user = {
        uuid.UUID(e.payload["user_id"]): e.payload["amount"] // 100 for e in batch
    }  # 1% of each stay
    for user_id, amount in per_user.items():
        assert (await points.balance(user_id)).balance == amount


async def test_a_handler_failing_mid_batch_still_applies_each_event_once(
    platform: Platform, points: PointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = completed_stays()
    consumer = consumer_of(platform)
    fail_on_call(points, monkeypatch, 2, lambda: RuntimeError("database went away"))
    # The batch transaction fails; the consumer retries event by event and applies them all.
    await consumer.handle_batch(batch)
    monkeypatch.undo()
    await consumer.handle_batch(batch + batch[:3])
    assert await earns(platform) == exactly_once(batch)


async def test_an_event_that_keeps_failing_holds_back_only_itself(
    platform: Platform, points: PointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = completed_stays()
    poisoned = batch[3].payload["reservation_id"]
    real = points.earn

    async def earn(unit: Any, *, reservation_id: uuid.UUID, **kwargs: Any) -> int:
        if str(reservation_id) == poisoned:
            raise RuntimeError("poisoned until fixed")
        return await real(unit, reservation_id=reservation_id, **kwargs)

    monkeypatch.setattr(points, "earn", earn)
    consumer = consumer_of(platform)
    with pytest.raises(RuntimeError):
        await consumer.handle_batch(batch)
    applied = await earns(platform)
    assert applied == exactly_once([e for e in batch if e is not batch[3]])

    monkeypatch.undo()  # fixed: the redelivered batch applies the missing event, and only it
    await consumer.handle_batch(batch)
    assert await earns(platform) == exactly_once(batch)


async def test_a_stay_whose_amount_key_was_renamed_earns_nothing_and_is_parked(
    platform: Platform, points: PointService
) -> None:
    """A producer that renamed ``amount`` must not make the consumer earn on a default of 0 (or
    anything else): the event is parked for someone to fix, and the rest of the batch earns."""
    batch = completed_stays()
    broken = batch[2]
    renamed = dict(broken.payload)
    renamed["paid_amount"] = renamed.pop("amount")
    batch[2] = Event(
        type=broken.type,
        aggregate_id=broken.aggregate_id,
        payload=renamed,
        id=broken.id,
        occurred_at=broken.occurred_at,
    )
    consumer = consumer_of(platform)
    await consumer.handle_batch(batch)
    await consumer.handle_batch(batch)  # redelivered

    assert await earns(platform) == exactly_once(batch[:2] + batch[3:])
    assert (await points.balance(uuid.UUID(renamed["user_id"]))).balance == 0
    (letter,) = await consumer.dead_letters()
    assert letter.event_id == broken.id
    assert "amount" in letter.error
