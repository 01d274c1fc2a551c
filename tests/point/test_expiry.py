"""The expire-points job: several workers at once expire each lot exactly once (PostgreSQL, SKIP
LOCKED); a dry run reports without changing anything; the metrics count what expired."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.point.models import Entry, Lot
from haot.point.service import PointService
from tests.point.conftest import postgres_only

DAY = timedelta(days=1)
USERS = 40
DUE_PER_USER = 60  # 2,400 due lots: several chunks of 500 for each worker to claim
LIVE_PER_USER = 3


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def seed_lots(platform: Platform, now: datetime) -> tuple[int, int]:
    """Due lots (expired before ``now``, some partly spent, some already used up) and live lots
    for many users; returns (due lots, due points)."""
    rows = []
    due_lots = due_points = 0
    for u in range(USERS):
        user_id = uuid.uuid4()
        for i in range(DUE_PER_USER + LIVE_PER_USER):
            amount = 100 + i
            remaining = [amount, amount // 2, 0][i % 3]
            due = i < DUE_PER_USER
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "kind": "ADMIN_GRANT",
                    "amount": amount,
                    "remaining": remaining,
                    "expires_at": now - timedelta(minutes=1 + i) if due else now + (i + 1) * DAY,
                    "source": None,
                    "reason": f"seed {u}/{i}",
                    "created_at": now - 400 * DAY,
                }
            )
            if due and remaining:
                due_lots += 1
                due_points += remaining
    async with platform.uow_factory("point")() as unit:
        await unit.session.execute(insert(Lot), rows)
        await unit.commit()
    return due_lots, due_points


async def ledger(platform: Platform) -> tuple[list[Entry], dict[uuid.UUID, int]]:
    async with platform.uow_factory("point")() as unit:
        entries = list((await unit.session.scalars(select(Entry))).all())
        lots = {lot.id: lot.remaining for lot in (await unit.session.scalars(select(Lot))).all()}
    return entries, lots


@postgres_only
@pytest.mark.postgres
@pytest.mark.slow
async def test_two_workers_at_once_expire_every_lot_exactly_once(platform: Platform) -> None:
    now = utcnow()
    due_lots, due_points = await seed_lots(platform, now)
    _, before = await ledger(platform)
    points_metric = metric("haot_points_expired_total")
    lots_metric = metric("haot_point_lots_expired_total")

    first, second = await asyncio.gather(
        platform.jobs.run("expire-points", as_of=now),
        platform.jobs.run("expire-points", as_of=now),
    )

    assert first["lots"] + second["lots"] == due_lots
    assert first["points"] + second["points"] == due_points
    entries, after = await ledger(platform)
    assert all(e.type == "EXPIRE" for e in entries)
    expired_lots = [e.lot_id for e in entries]
    assert len(expired_lots) == len(set(expired_lots)) == due_lots  # each lot once
    assert sum(e.amount for e in entries) == -due_points
    for entry in entries:
        assert entry.amount == -before[entry.lot_id]  # what the lot had left, no more
    # Every due lot is closed; every live lot is untouched.
    changed = {lot_id for lot_id in after if after[lot_id] != before[lot_id]}
    assert changed == set(expired_lots)
    assert metric("haot_points_expired_total") - points_metric == due_points
    assert metric("haot_point_lots_expired_total") - lots_metric == due_lots

    # Nothing left: another run finds no work.
    assert await platform.jobs.run("expire-points", as_of=now) == {
        "lots": 0,
        "points": 0,
        "dry_run": 0,
    }


async def test_a_dry_run_reports_what_would_expire_and_changes_nothing(
    platform: Platform, points: PointService
) -> None:
    now = utcnow()
    guest = uuid.uuid4()
    async with platform.uow_factory("point")() as unit:
        for amount, remaining, expires_at in [
            (500, 500, now + 5 * DAY),
            (300, 120, now + 6 * DAY),
            (200, 0, now + 6 * DAY),  # used up: nothing to expire
            (700, 700, now + 60 * DAY),  # not due yet
        ]:
            unit.session.add(
                Lot(
                    id=uuid.uuid4(),
                    user_id=guest,
                    kind="ADMIN_GRANT",
                    amount=amount,
                    remaining=remaining,
                    expires_at=expires_at,
                    source=None,
                    reason="seed",
                    created_at=now,
                )
            )
        await unit.commit()
    as_of = now + 7 * DAY
    before = await ledger(platform)
    points_metric = metric("haot_points_expired_total")
    balance = await points.balance(guest)

    report = await platform.jobs.run("expire-points", as_of=as_of, dry_run=True)

    assert report == {"lots": 2, "points": 620, "dry_run": 1}
    assert await ledger(platform) == before
    assert metric("haot_points_expired_total") == points_metric
    assert await points.balance(guest) == balance

    # The real run does what the dry run announced.
    assert await platform.jobs.run("expire-points", as_of=as_of) == {
        "lots": 2,
        "points": 620,
        "dry_run": 0,
    }
    assert metric("haot_points_expired_total") - points_metric == 620
    async with platform.uow_factory("point")() as unit:
        total = (
            await unit.session.execute(
                select(func.coalesce(func.sum(Entry.amount), 0)).where(Entry.type == "EXPIRE")
            )
        ).scalar_one()
    assert total == -620
