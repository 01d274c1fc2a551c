"""Saga fixtures: the all-in-one platform with an in-memory gateway, a host with a lodging whose
room type has a calendar, and a guest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from haot.bootstrap import build_platform
from haot.lodging.schemas import CalendarUpdate, LodgingCreate, Region, RoomTypeCreate
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.support.gateway import InMemoryGateway


@dataclass
class World:
    platform: Platform
    gateway: InMemoryGateway
    host: Principal
    room_type_id: uuid.UUID
    lodging_id: uuid.UUID
    today: date

    def guest(self) -> Principal:
        return Principal(user_id=uuid.uuid4(), role=Role.USER, issued_at=utcnow())

    async def settle(self) -> None:
        """Deliver every outbox event (the relay runs in-process in these tests)."""
        for relay in self.platform.relays.values():
            while await relay.drain():
                pass


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    gateway = InMemoryGateway()
    platform = build_platform(settings, gateway=gateway)
    await platform.start()
    host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
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
        host, lodging.id, RoomTypeCreate(name="Double", capacity=2, total_rooms=1)
    )
    today = seoul_today()
    await lodgings.update_calendar(
        host,
        room_type.id,
        CalendarUpdate(start=today, end=today + timedelta(days=60), price=100_000),
    )
    try:
        yield World(platform, gateway, host, room_type.id, lodging.id, today)
    finally:
        await platform.stop()
