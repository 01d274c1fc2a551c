"""A hold takes one room on every night of the stay or nothing, is idempotent per reservation, and
refuses a reservation that was given up; a refusal names the night that is the problem."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from haot.lodging.errors import InvalidStay
from haot.lodging.inventory import HoldReleased, SoldOut
from tests.lodging.factories import (
    Actor,
    _lodging_client,
    create_listing,
    day,
    host_month,
    month,
    put_calendar,
)


async def held_and_sold(
    client: httpx.AsyncClient, host: Actor, room_type_id: str, nights: list[date]
) -> list[tuple[int, int]]:
    days: dict[str, dict[str, Any]] = {}
    for m in {month(n) for n in nights}:
        days |= await host_month(client, host, room_type_id, m)
    return [(days[n.isoformat()]["held"], days[n.isoformat()]["sold"]) for n in nights]


def stay(start: int, nights: int) -> tuple[date, date]:
    return day(start), day(start + nights)


async def test_holding_again_for_the_same_reservation_changes_nothing(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, total_rooms=1)
    lodging = _lodging_client(app_client)
    reservation_id = uuid.uuid4()
    check_in, check_out = stay(5, 2)
    room_type_id = uuid.UUID(listing.room_type_id)
    first = await lodging.hold(reservation_id, room_type_id, check_in, check_out, 2)
    # The first hold took the last room; the retry must not read that as "sold out".
    again = await lodging.hold(reservation_id, room_type_id, check_in, check_out, 2)
    assert again == first
    assert await held_and_sold(app_client, host, listing.room_type_id, [day(5), day(6)]) == [
        (1, 0),
        (1, 0),
    ]
    with pytest.raises(SoldOut):
        await lodging.hold(uuid.uuid4(), room_type_id, check_in, check_out, 2)


async def test_a_given_up_reservation_cannot_hold_later(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, total_rooms=2)
    lodging = _lodging_client(app_client)
    reservation_id = uuid.uuid4()
    assert await lodging.release(reservation_id) is False  # leaves a tombstone
    with pytest.raises(HoldReleased):
        await lodging.hold(reservation_id, uuid.UUID(listing.room_type_id), *stay(5, 2), 2)
    assert await held_and_sold(app_client, host, listing.room_type_id, [day(5), day(6)]) == [
        (0, 0),
        (0, 0),
    ]


async def test_a_stay_with_one_closed_night_takes_nothing_and_names_that_night(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, total_rooms=1)
    closed = await put_calendar(app_client, host, listing.room_type_id, day(7), day(8), closed=True)
    assert closed.status_code == 200, closed.text
    lodging = _lodging_client(app_client)
    nights = [day(5), day(6), day(7)]
    with pytest.raises(SoldOut, match=day(7).isoformat()):
        await lodging.hold(uuid.uuid4(), uuid.UUID(listing.room_type_id), *stay(5, 3), 2)
    assert await held_and_sold(app_client, host, listing.room_type_id, nights) == [(0, 0)] * 3


async def test_a_stay_shorter_than_a_nights_minimum_is_invalid_and_takes_nothing(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, total_rooms=1)
    changed = await put_calendar(app_client, host, listing.room_type_id, day(6), day(7), min_stay=3)
    assert changed.status_code == 200, changed.text
    lodging = _lodging_client(app_client)
    with pytest.raises(InvalidStay):
        await lodging.hold(uuid.uuid4(), uuid.UUID(listing.room_type_id), *stay(5, 2), 2)
    assert await held_and_sold(app_client, host, listing.room_type_id, [day(5), day(6)]) == [
        (0, 0),
        (0, 0),
    ]
