"""Saga fixtures: the all-in-one platform with an in-memory gateway, a host with a lodging whose
room type has a calendar, and a guest.

``world`` runs on both database backends at the service layer; ``pg_world`` is the same on
PostgreSQL only (races); ``api_world`` is the real app (``create_app``) on PostgreSQL, driven over
ASGI with minted tokens, its relay, consumers and jobs running in-process as in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from haot.app import create_app
from haot.bootstrap import build_platform
from haot.lodging.schemas import CalendarUpdate, LodgingCreate, Region, RoomTypeCreate
from haot.platform import uow as uow_module
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from tests.conftest import _flush_redis, _truncate, make_settings
from tests.support.gateway import InMemoryGateway


@dataclass
class World:
    platform: Platform
    gateway: InMemoryGateway
    host: Principal
    room_type_id: uuid.UUID
    lodging_id: uuid.UUID
    today: date
    client: httpx.AsyncClient | None = None  # only in ``api_world``
    _tokens: dict[uuid.UUID, str] = field(default_factory=dict)

    def guest(self) -> Principal:
        return Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())

    def principal(self, role: Role) -> Principal:
        return Principal(user_id=uuid.uuid4(), role=role, issued_at=utcnow())

    def auth(self, principal: Principal) -> dict[str, str]:
        """Bearer header for ``principal`` (minted directly: no sign-up, no argon2)."""
        token = self._tokens.get(principal.user_id)
        if token is None:
            token = self.platform.signer.issue(principal.user_id, principal.role).token
            self._tokens[principal.user_id] = token
        return {"Authorization": f"Bearer {token}"}

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.client is not None, "this test needs the api_world fixture"
        return self.client

    async def add_room_type(
        self,
        *,
        rooms: int,
        start: date,
        nights: int,
        price: int = 100_000,
        host: Principal | None = None,
        lodging_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A new room type of ``rooms`` rooms, open for ``nights`` nights from ``start``."""
        lodgings = self.platform.services["lodging"]
        room_type = await lodgings.add_room_type(
            host or self.host,
            lodging_id or self.lodging_id,
            RoomTypeCreate(name=f"Room {uuid.uuid4().hex[:6]}", capacity=2, total_rooms=rooms),
        )
        await lodgings.update_calendar(
            host or self.host,
            room_type.id,
            CalendarUpdate(start=start, end=start + timedelta(days=nights), price=price),
        )
        return uuid.UUID(str(room_type.id))

    async def add_lodging(self, host: Principal) -> tuple[uuid.UUID, uuid.UUID]:
        """Another host's lodging with one room type open for 60 days: (lodging, room type)."""
        lodging_id, room_type_id = await open_lodging(self.platform, host, self.today, rooms=1)
        return lodging_id, room_type_id

    async def settle(self) -> None:
        await settle(self.platform)

    async def unpublished(self) -> int:
        return await unpublished(self.platform)

    async def outbox(self, event_type: str) -> list[OutboxMessage]:
        return await outbox(self.platform, event_type)

    async def outbox_all(self) -> list[OutboxMessage]:
        async with self.platform.databases.sessions_for("reservation")() as session:
            return list((await session.scalars(select(OutboxMessage))).all())


async def settle(platform: Platform) -> None:
    """Deliver every outbox event, finish the after-commit actions they started (voids,
    refunds) and execute pending refunds, until nothing moves any more. Works beside the app's
    own background relay too: rows it is still publishing count as unpublished."""
    payments = platform.services["payment"]
    for _ in range(500):
        for relay in platform.relays.values():
            await relay.drain()
        running = list(uow_module._running)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await payments.execute_refunds()
        if not uow_module._running and await unpublished(platform) == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("events did not settle")


async def unpublished(platform: Platform) -> int:
    async with platform.databases.sessions_for("reservation")() as session:
        statement = select(func.count()).where(OutboxMessage.published_at.is_(None))
        return int((await session.execute(statement)).scalar_one())


async def outbox(platform: Platform, event_type: str) -> list[OutboxMessage]:
    async with platform.databases.sessions_for("reservation")() as session:
        statement = (
            select(OutboxMessage).where(OutboxMessage.type == event_type).order_by(OutboxMessage.id)
        )
        return list((await session.scalars(statement)).all())


async def open_lodging(
    platform: Platform, host: Principal, today: date, *, rooms: int
) -> tuple[uuid.UUID, uuid.UUID]:
    lodgings = platform.services["lodging"]
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
        host, lodging.id, RoomTypeCreate(name="Double", capacity=2, total_rooms=rooms)
    )
    await lodgings.update_calendar(
        host,
        room_type.id,
        CalendarUpdate(start=today, end=today + timedelta(days=60), price=100_000),
    )
    return uuid.UUID(str(lodging.id)), uuid.UUID(str(room_type.id))


@asynccontextmanager
async def service_world(settings: Settings) -> AsyncIterator[World]:
    gateway = InMemoryGateway()
    platform = build_platform(settings, gateway=gateway)
    await platform.start()
    try:
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        today = seoul_today()
        lodging_id, room_type_id = await open_lodging(platform, host, today, rooms=1)
        yield World(platform, gateway, host, room_type_id, lodging_id, today)
    finally:
        await platform.stop()


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with service_world(settings) as built:
        yield built


@pytest.fixture(params=["auto", "saga"], ids=["one-transaction", "saga"])
async def pg_settings(
    postgres_url: str, redis_available: str, request: pytest.FixtureRequest
) -> Settings:
    """Fresh PostgreSQL tables and Redis, for tests about concurrency (PostgreSQL only); each
    test runs twice: booking in one transaction (the shared database's default) and as a saga."""
    await _truncate(postgres_url)
    await _flush_redis(redis_available)
    return make_settings(postgres_url, booking_transaction=request.param)


@pytest.fixture
async def pg_world(pg_settings: Settings) -> AsyncIterator[World]:
    async with service_world(pg_settings) as built:
        yield built


@pytest.fixture
async def api_world(pg_settings: Settings) -> AsyncIterator[World]:
    """``create_app`` with the in-memory gateway, over ASGI; workers run in-process."""
    gateway = InMemoryGateway()
    app = create_app(pg_settings, gateway=gateway)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        platform: Platform = app.state.platform
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        today = seoul_today()
        lodging_id, room_type_id = await open_lodging(platform, host, today, rooms=1)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            built = World(platform, gateway, host, room_type_id, lodging_id, today, client)
            yield built
            await built.settle()
