"""Booking in one transaction where the contexts share a database, as a saga where they do not
(ADR 0013); and the pending cap, which must hold however many bookings a guest fires at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from haot.bootstrap import build_platform
from haot.platform.settings import Settings
from haot.reservation.schemas import StayRequest
from haot.reservation.service import ReservationService, TooManyPending
from tests.conftest import make_settings
from tests.reservation.conftest import World
from tests.reservation.invariants import assert_consistent
from tests.support.gateway import InMemoryGateway


def booking_mode(settings: Settings) -> bool:
    platform = build_platform(settings, gateway=InMemoryGateway())
    service: ReservationService = platform.services["reservation"]
    return service._one_transaction


def test_one_transaction_when_every_booking_context_shares_the_database(
    sqlite_url: str, tmp_path: Path
) -> None:
    assert booking_mode(make_settings(sqlite_url)) is True
    assert booking_mode(make_settings(sqlite_url, booking_transaction="saga")) is False
    elsewhere = f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}"
    assert booking_mode(make_settings(sqlite_url, payment_database_url=elsewhere)) is False
    # A context that keeps its own URL equal to the shared one still shares it.
    assert booking_mode(make_settings(sqlite_url, lodging_database_url=sqlite_url)) is True


async def test_the_pending_cap_holds_under_fifty_parallel_bookings_by_one_guest(
    pg_world: World,
) -> None:
    """Counting pending reservations and inserting one must not interleave between a guest's
    own concurrent bookings (issue 11, item 6)."""
    world = pg_world
    service: ReservationService = world.platform.services["reservation"]
    cap = service._max_pending
    guest = world.guest()

    async def book(day: int) -> object:
        check_in = world.today + timedelta(days=day)
        request = StayRequest(
            room_type_id=world.room_type_id,
            check_in=check_in,
            check_out=check_in + timedelta(days=1),
            guests=2,
        )
        try:
            return await service.create(guest, request, idempotency_key=None)
        except TooManyPending as exc:
            return exc

    outcomes = await asyncio.gather(*(book(day) for day in range(1, 51)))
    refused = [o for o in outcomes if isinstance(o, TooManyPending)]
    assert len(refused) == 50 - cap
    await world.settle()
    snap = await assert_consistent(world.platform, world.gateway)
    pending = [r for r in snap.reservations if r.status == "PENDING"]
    assert len(pending) == cap
    assert sum(n.held for n in snap.nights) == cap
