"""Overlapping stays hammered concurrently on PostgreSQL never deadlock.

Found by ``make bench``: two bookings of overlapping stays each locked a night the other waited
for, and PostgreSQL broke the deadlock by failing one (a 500). A multi-row UPDATE locks rows in
whatever order its plan visits them; a bitmap heap scan visits them by physical position, which
every update moves. Here index scans are switched off for the test's connections, so the planner
takes exactly that path, and every statement that changes several nights must still lock them in
date order.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from haot.lodging.inventory import Inventory, SoldOut
from haot.lodging.models import Hold, Lodging, Night, RoomType
from haot.platform.uow import UnitOfWorkFactory

FIRST = date(2031, 3, 2)
NIGHTS = 8
TASKS = 24
ROUNDS = 12


@pytest.fixture(autouse=True)
def _cheap_password_hashing() -> None:
    """Overrides the package's autouse fixture: this test runs on PostgreSQL only, no app."""


@pytest.fixture
async def inventory(postgres_url: str) -> AsyncIterator[tuple[Inventory, uuid.UUID, Any]]:
    engine = create_async_engine(
        postgres_url,
        pool_size=TASKS,
        connect_args={
            "server_settings": {"enable_indexscan": "off", "enable_indexonlyscan": "off"}
        },
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    now = datetime.now(UTC)
    lodging_id, room_type_id = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(
            Lodging(
                id=lodging_id,
                host_id=uuid.uuid4(),
                name="Lock order",
                description="",
                address="1 Test-ro",
                city="Testcity",
                district="Lock",
                city_key="testcity",
                district_key="lock",
                search_text="lock order",
                latitude=37.5,
                longitude=127.0,
                amenities=[],
                image_urls=[],
                max_guests=4,
                check_in_time=time(15),
                check_out_time=time(11),
                max_nights=30,
                cancellation_policy=[{"days_before": 0, "refund_percent": 0}],
                rating_sum=0,
                review_count=0,
                created_at=now,
                updated_at=now,
            )
        )
        session.add(
            RoomType(
                id=room_type_id,
                lodging_id=lodging_id,
                name="Dorm",
                capacity=2,
                total_rooms=100_000,
                created_at=now,
            )
        )
        session.add_all(
            Night(
                room_type_id=room_type_id,
                date=FIRST + timedelta(days=n),
                lodging_id=lodging_id,
                price=50_000,
                total=100_000,
                held=0,
                sold=0,
                closed=False,
                min_stay=1,
                max_stay=30,
            )
            for n in range(NIGHTS)
        )
    try:
        yield Inventory(uow=UnitOfWorkFactory(sessions)), room_type_id, sessions
    finally:
        await engine.dispose()


async def test_overlapping_holds_confirms_and_releases_never_deadlock(
    inventory: tuple[Inventory, uuid.UUID, Any],
) -> None:
    stock, room_type_id, sessions = inventory
    async with sessions() as session:
        plan = "\n".join(
            (
                await session.execute(
                    text(
                        "EXPLAIN UPDATE lodging_nights SET held = held + 1"
                        " WHERE room_type_id = :rt AND date >= :a AND date < :b"
                    ),
                    {"rt": room_type_id, "a": FIRST, "b": FIRST + timedelta(days=3)},
                )
            ).scalars()
        )
    assert "Bitmap Heap Scan" in plan, plan  # rows visited by physical position, not by date
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()

    async def guest(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            length = rng.randint(2, 5)
            start = FIRST + timedelta(days=rng.randint(0, NIGHTS - length))
            reservation_id = uuid.uuid4()
            try:
                await stock.hold(
                    reservation_id, room_type_id, start, start + timedelta(days=length), 1
                )
                # Some stays are paid, some given up: confirm and release change nights too.
                if rng.random() < 0.5:
                    await stock.confirm(reservation_id)
                    outcomes["sold"] += 1
                else:
                    await stock.release(reservation_id)
                    outcomes["released"] += 1
            except SoldOut:
                outcomes["sold_out"] += 1
            except Exception as exc:  # a deadlock surfaces here as a database error
                errors.append(exc)

    await asyncio.gather(*(guest(seed) for seed in range(TASKS)))
    assert not errors, f"{len(errors)} failed, first: {errors[0]!r}"
    assert outcomes["sold"] + outcomes["released"] == TASKS * ROUNDS

    async with sessions() as session:
        holds = (await session.scalars(select(Hold).where(Hold.room_type_id == room_type_id))).all()
        nights = (
            await session.scalars(select(Night).where(Night.room_type_id == room_type_id))
        ).all()
    sold: Counter[date] = Counter()
    for hold in holds:
        if hold.status == "SOLD":
            for n in range((hold.check_out - hold.check_in).days):
                sold[hold.check_in + timedelta(days=n)] += hold.rooms
    assert {n.date: (n.held, n.sold) for n in nights} == {n.date: (0, sold[n.date]) for n in nights}
