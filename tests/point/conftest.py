"""Point fixtures: the point context alone (``platform``, ``points``) with a clock the tests move,
helpers that read the ledger's rows directly, and ``saga``: the booking contexts (identity, lodging,
point, coupon, payment, reservation) with an in-memory gateway and a lodging open for 60 nights."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from haot.bootstrap import build_platform
from haot.lodging.schemas import CalendarUpdate, LodgingCreate, Region, RoomTypeCreate
from haot.models import metadata
from haot.platform import uow as uow_module
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.db import create_engine
from haot.platform.events import Event
from haot.platform.inbox import Consumer
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork
from haot.point.models import Allocation, Entry, Hold, Lot
from haot.point.schemas import GrantCreate
from haot.point.service import PointService
from haot.reservation.schemas import StayRequest
from tests.support.gateway import InMemoryGateway, pay_at_checkout

T = TypeVar("T")

# Mechanics that do not depend on the database engine run on one backend only.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

SAGA_CONTEXTS = ("identity", "lodging", "point", "coupon", "payment", "reservation")


class Clock:
    """The point context's ``utcnow``, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


async def _clear(url: str) -> None:
    """Empty every table. DELETE rather than the shared fixture's TRUNCATE: on these few rows it
    is ten times faster on PostgreSQL, which keeps this suite quick."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{backend}_url")
    await _clear(url)
    return url


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    value = Clock()
    monkeypatch.setattr("haot.point.service.utcnow", value)
    return value


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    """The point context alone on the backend under test (no background workers)."""
    built = build_platform(settings, contexts=("point",))
    await built.start()
    try:
        yield built
    finally:
        await built.stop()


@pytest.fixture
def points(platform: Platform) -> PointService:
    service: PointService = platform.services["point"]
    return service


def user() -> uuid.UUID:
    return uuid.uuid4()


async def grant(
    points: PointService, user_id: uuid.UUID, amount: int, *, expires_at: datetime | None = None
) -> uuid.UUID:
    """Grant ``amount`` as an admin; returns the new lot's id."""
    before = {lot.id for lot in await lots_of(points, user_id)}
    await points.grant(
        GrantCreate(user_id=user_id, amount=amount, reason="test grant", expires_at=expires_at)
    )
    (new,) = [lot.id for lot in await lots_of(points, user_id) if lot.id not in before]
    return new


async def in_unit(points: PointService, action: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run a consumer-side use case (spend, release, refund, earn) in its own committed unit."""
    async with points._uow() as unit:
        result = await action(unit)
        await unit.commit()
    return result


async def _rows(points: PointService, statement: Any) -> list[Any]:
    async with points._uow() as unit:
        return list((await unit.session.scalars(statement)).all())


async def lots_of(points: PointService, user_id: uuid.UUID) -> list[Lot]:
    return await _rows(
        points,
        select(Lot).where(Lot.user_id == user_id).order_by(Lot.created_at, Lot.id),
    )


async def entries_of(
    points: PointService, user_id: uuid.UUID, type: str | None = None
) -> list[Entry]:
    statement = select(Entry).where(Entry.user_id == user_id)
    if type is not None:
        statement = statement.where(Entry.type == type)
    return await _rows(points, statement.order_by(Entry.created_at, Entry.id))


async def hold_of(points: PointService, reservation_id: uuid.UUID) -> Hold | None:
    rows = await _rows(points, select(Hold).where(Hold.reservation_id == reservation_id))
    return rows[0] if rows else None


async def allocations_of(points: PointService, reservation_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """lot id → points of the reservation's hold still out of that lot."""
    hold = await hold_of(points, reservation_id)
    assert hold is not None
    rows: Sequence[Allocation] = await _rows(
        points, select(Allocation).where(Allocation.hold_id == hold.id)
    )
    return {a.lot_id: a.amount - a.returned for a in rows}


async def ledger_total(points: PointService, user_id: uuid.UUID) -> int:
    """Sum of the user's history: must equal what their lots hold plus what is held."""
    rows = await _rows(
        points, select(func.coalesce(func.sum(Entry.amount), 0)).where(Entry.user_id == user_id)
    )
    return int(rows[0])


# The booking saga --------------------------------------------------------------------------------


@dataclass
class Saga:
    platform: Platform
    gateway: InMemoryGateway
    host: Principal
    room_type_id: uuid.UUID
    today: date

    @property
    def points(self) -> PointService:
        service: PointService = self.platform.services["point"]
        return service

    @property
    def reservations(self) -> Any:
        return self.platform.services["reservation"]

    @property
    def payments(self) -> Any:
        return self.platform.services["payment"]

    @staticmethod
    def guest() -> Principal:
        return Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())

    def stay(self, *, start: int = 10, nights: int = 2, points: int = 0) -> StayRequest:
        check_in = self.today + timedelta(days=start)
        return StayRequest(
            room_type_id=self.room_type_id,
            check_in=check_in,
            check_out=check_in + timedelta(days=nights),
            guests=2,
            points=points,
        )

    async def book(self, guest: Principal, *, start: int = 10, points: int = 0) -> Any:
        return await self.reservations.create(
            guest, self.stay(start=start, points=points), idempotency_key=None
        )

    async def pay(self, guest: Principal, created: Any) -> None:
        await pay_at_checkout(self.platform, self.gateway, created.payment_id)
        await self.payments.complete(guest, created.payment_id)
        await self.settle()

    async def settle(self) -> None:
        """Deliver every outbox event and finish what the consumers started."""
        for _ in range(100):
            moved = False
            for relay in self.platform.relays.values():
                while await relay.drain():
                    moved = True
            running = list(uow_module._running)
            if running:
                await asyncio.gather(*running, return_exceptions=True)
                moved = True
            if not moved:
                return
        raise AssertionError("events did not settle")

    def point_consumer(self) -> Consumer:
        return next(c for c in self.platform.consumers if c.name == "point.reservations")

    async def events(self, event_type: str, reservation_id: uuid.UUID) -> list[Event]:
        async with self.platform.databases.sessions_for("reservation")() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.type == event_type, OutboxMessage.key == str(reservation_id))
                .order_by(OutboxMessage.id)
            )
            return [row.to_event() for row in rows]


@pytest.fixture
async def saga(settings: Settings) -> AsyncIterator[Saga]:
    gateway = InMemoryGateway()
    built = build_platform(settings, contexts=SAGA_CONTEXTS, gateway=gateway)
    await built.start()
    try:
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        lodgings = built.services["lodging"]
        lodging = await lodgings.create(
            host,
            LodgingCreate(
                name="Harbor Stay",
                address="1 Harbor-ro",
                region=Region(city="Busan", district="Haeundae"),
                latitude=35.16,
                longitude=129.16,
                max_guests=4,
            ),
        )
        room_type = await lodgings.add_room_type(
            host, lodging.id, RoomTypeCreate(name="Double", capacity=2, total_rooms=5)
        )
        today = seoul_today()
        await lodgings.update_calendar(
            host,
            room_type.id,
            CalendarUpdate(start=today, end=today + timedelta(days=60), price=100_000),
        )
        yield Saga(built, gateway, host, uuid.UUID(str(room_type.id)), today)
    finally:
        await built.stop()
