"""Host calendar: opening in bulk, weekday/weekend prices, partial updates, stop-sell, inventory
rules, month reads, and the public calendar."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.lodging.factories import (
    API,
    FRIDAY,
    SATURDAY,
    Actor,
    Listing,
    assert_problem,
    create_listing,
    create_lodging,
    create_room_type,
    day,
    host_month,
    last_day_of_month,
    month,
    next_weekday,
    nights,
    open_calendar,
    put_calendar,
    set_inventory,
)


async def _room_type(client: httpx.AsyncClient, host: Actor, total_rooms: int = 3) -> str:
    lodging = await create_lodging(client, host)
    room_type = await create_room_type(client, host, lodging["id"], total_rooms=total_rooms)
    return str(room_type["id"])


async def _days(
    client: httpx.AsyncClient, host: Actor, room_type_id: str, start: Any, end: Any
) -> dict[str, dict[str, Any]]:
    """Host view of every existing night in [start, end), across months."""
    found: dict[str, dict[str, Any]] = {}
    for m in sorted({month(d) for d in nights(start, end)}):
        found.update(await host_month(client, host, room_type_id, m))
    wanted = {d.isoformat() for d in nights(start, end)}
    return {k: v for k, v in found.items() if k in wanted}


async def test_open_range_with_weekday_and_weekend_prices(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host, total_rooms=4)
    start = next_weekday(day(7), 0)  # a Monday
    end = start + timedelta(days=14)

    response = await put_calendar(
        app_client, host, room_type_id, start, end, price=100_000, weekend_price=150_000
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["room_type_id"] == room_type_id
    assert [d["date"] for d in body["days"]] == [d.isoformat() for d in nights(start, end)]

    days = await _days(app_client, host, room_type_id, start, end)
    assert len(days) == 14
    for night in nights(start, end):
        entry = days[night.isoformat()]
        expected = 150_000 if night.weekday() in (FRIDAY, SATURDAY) else 100_000
        assert entry["price"] == expected, (night, night.strftime("%A"))
        assert entry["total"] == 4  # defaults to the room type's total_rooms
        assert entry["held"] == 0
        assert entry["sold"] == 0
        assert entry["closed"] is False
        assert entry["min_stay"] == 1


async def test_opening_with_explicit_inventory_and_stay_rules(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host, total_rooms=4)
    body = await open_calendar(
        app_client,
        host,
        room_type_id,
        day(2),
        day(5),
        price=70_000,
        total_rooms=2,
        min_stay=2,
        max_stay=7,
    )
    assert len(body["days"]) == 3
    for entry in body["days"]:
        assert (entry["price"], entry["total"], entry["min_stay"], entry["max_stay"]) == (
            70_000,
            2,
            2,
            7,
        )


async def test_partial_updates_keep_the_other_fields(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host)
    start, end = day(10), day(16)
    await open_calendar(app_client, host, room_type_id, start, end, price=100_000, total_rooms=3)

    # Stay rules only on two nights: prices and inventory untouched.
    ok = await put_calendar(app_client, host, room_type_id, day(11), day(13), min_stay=2)
    assert ok.status_code == 200, ok.text
    # Price only on two other nights.
    ok = await put_calendar(app_client, host, room_type_id, day(13), day(15), price=120_000)
    assert ok.status_code == 200, ok.text
    # Inventory only on one night.
    ok = await put_calendar(app_client, host, room_type_id, day(15), day(16), total_rooms=1)
    assert ok.status_code == 200, ok.text

    days = await _days(app_client, host, room_type_id, start, end)
    summary = {
        (d - start).days: (
            days[d.isoformat()]["price"],
            days[d.isoformat()]["total"],
            days[d.isoformat()]["min_stay"],
        )
        for d in nights(start, end)
    }
    assert summary == {
        0: (100_000, 3, 1),
        1: (100_000, 3, 2),
        2: (100_000, 3, 2),
        3: (120_000, 3, 1),
        4: (120_000, 3, 1),
        5: (100_000, 1, 1),
    }


async def test_weekend_price_alone_updates_only_friday_and_saturday(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host)
    start = next_weekday(day(7), 0)
    end = start + timedelta(days=7)
    await open_calendar(app_client, host, room_type_id, start, end, price=100_000)

    ok = await put_calendar(app_client, host, room_type_id, start, end, weekend_price=180_000)
    assert ok.status_code == 200, ok.text

    days = await _days(app_client, host, room_type_id, start, end)
    for night in nights(start, end):
        expected = 180_000 if night.weekday() in (FRIDAY, SATURDAY) else 100_000
        assert days[night.isoformat()]["price"] == expected, night.strftime("%A")


async def test_close_and_reopen_nights(app_client: httpx.AsyncClient, host: Actor) -> None:
    room_type_id = await _room_type(app_client, host)
    await open_calendar(app_client, host, room_type_id, day(5), day(10), price=90_000)

    closed = await put_calendar(app_client, host, room_type_id, day(6), day(8), closed=True)
    assert closed.status_code == 200, closed.text
    days = await _days(app_client, host, room_type_id, day(5), day(10))
    assert [days[d.isoformat()]["closed"] for d in nights(day(5), day(10))] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert all(d["price"] == 90_000 for d in days.values())

    reopened = await put_calendar(app_client, host, room_type_id, day(6), day(8), closed=False)
    assert reopened.status_code == 200, reopened.text
    days = await _days(app_client, host, room_type_id, day(5), day(10))
    assert not any(d["closed"] for d in days.values())
    assert all(d["price"] == 90_000 for d in days.values())


async def test_opening_new_nights_without_price_is_refused(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host)
    response = await put_calendar(app_client, host, room_type_id, day(3), day(6), total_rooms=2)
    assert_problem(response, 422, "price_required")
    assert await _days(app_client, host, room_type_id, day(3), day(6)) == {}

    # Partly open range: the existing nights alone could be updated, but not half of a request.
    await open_calendar(app_client, host, room_type_id, day(3), day(5), price=50_000)
    response = await put_calendar(app_client, host, room_type_id, day(3), day(7), closed=True)
    assert_problem(response, 422, "price_required")
    days = await _days(app_client, host, room_type_id, day(3), day(7))
    assert sorted(days) == [day(3).isoformat(), day(4).isoformat()]
    assert not any(d["closed"] for d in days.values())


async def test_inventory_cannot_drop_below_held_plus_sold(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host, total_rooms=3)
    await open_calendar(app_client, host, room_type_id, day(4), day(8), price=60_000)
    await set_inventory(app_client, room_type_id, day(6), held=1, sold=1)

    refused = await put_calendar(app_client, host, room_type_id, day(4), day(8), total_rooms=1)
    assert_problem(refused, 409, "inventory_conflict")
    days = await _days(app_client, host, room_type_id, day(4), day(8))
    assert all(d["total"] == 3 for d in days.values()), "a refused update changes no night"

    allowed = await put_calendar(app_client, host, room_type_id, day(4), day(8), total_rooms=2)
    assert allowed.status_code == 200, allowed.text
    days = await _days(app_client, host, room_type_id, day(4), day(8))
    night = days[day(6).isoformat()]
    assert (night["price"], night["total"], night["held"], night["sold"]) == (60_000, 2, 1, 1)

    zero = await put_calendar(app_client, host, room_type_id, day(4), day(6), total_rooms=0)
    assert zero.status_code == 200, zero.text


async def test_room_type_shrink_below_booked_rooms_is_refused(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    room_type = await create_room_type(app_client, host, lodging["id"], total_rooms=3)
    await open_calendar(app_client, host, room_type["id"], day(4), day(6), price=60_000)
    await set_inventory(app_client, room_type["id"], day(5), held=0, sold=3)

    refused = await app_client.patch(
        f"{API}/host/room-types/{room_type['id']}", json={"total_rooms": 2}, headers=host.headers
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] in {"inventory_conflict", "lodging_has_bookings"}
    days = await _days(app_client, host, room_type["id"], day(4), day(6))
    assert days[day(5).isoformat()]["total"] == 3


INVALID_UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("end equals start", {"start": 5, "end": 5, "price": 1}),
    ("end before start", {"start": 6, "end": 5, "price": 1}),
    ("over 366 nights", {"start": 1, "end": 369, "price": 1}),
    ("negative price", {"start": 1, "end": 2, "price": -1}),
    ("absurd price", {"start": 1, "end": 2, "price": 100_000_001}),
    ("negative rooms", {"start": 1, "end": 2, "price": 1, "total_rooms": -1}),
    ("min_stay over max_stay", {"start": 1, "end": 2, "price": 1, "min_stay": 5, "max_stay": 2}),
    ("min_stay zero", {"start": 1, "end": 2, "price": 1, "min_stay": 0}),
    ("unknown field", {"start": 1, "end": 2, "price": 1, "held": 3}),
    ("missing end", {"start": 1, "price": 1}),
    ("malformed date", {"start": "2030-02-30", "end": 2, "price": 1}),
]


async def test_invalid_calendar_update_is_422(app_client: httpx.AsyncClient, host: Actor) -> None:
    room_type_id = await _room_type(app_client, host)
    wrong = []
    for name, body in INVALID_UPDATES:
        payload = {
            k: day(v).isoformat() if k in ("start", "end") and isinstance(v, int) else v
            for k, v in body.items()
        }
        response = await app_client.put(
            f"{API}/host/room-types/{room_type_id}/calendar", json=payload, headers=host.headers
        )
        if (response.status_code, response.json().get("code")) != (422, "validation_error"):
            wrong.append((name, response.status_code, response.text[:200]))
        else:
            assert_problem(response, 422, "validation_error")
    assert wrong == []
    assert await _days(app_client, host, room_type_id, day(1), day(3)) == {}


async def test_calendar_update_starting_in_the_past_is_refused(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host)
    response = await put_calendar(app_client, host, room_type_id, day(-1), day(3), price=1)
    assert_problem(response, 422, "invalid_dates")
    today = await put_calendar(app_client, host, room_type_id, day(0), day(1), price=1)
    assert today.status_code == 200, today.text


async def test_month_read_lists_only_existing_nights_of_that_month_sorted(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host)
    last = last_day_of_month(day(5))
    start, end = last - timedelta(days=2), last + timedelta(days=4)
    # Opened out of order, with a gap on the 1st: 3 nights in this month, 2 in the next.
    await open_calendar(app_client, host, room_type_id, last + timedelta(days=2), end, price=2)
    await open_calendar(app_client, host, room_type_id, start, last + timedelta(days=1), price=1)

    first = await app_client.get(
        f"{API}/host/room-types/{room_type_id}/calendar",
        params={"month": month(start)},
        headers=host.headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["month"] == month(start)
    assert first.json()["room_type_id"] == room_type_id
    assert [d["date"] for d in first.json()["days"]] == [
        d.isoformat() for d in nights(start, last + timedelta(days=1))
    ]
    following = await host_month(app_client, host, room_type_id, month(end))
    assert list(following) == [(last + timedelta(days=i)).isoformat() for i in (2, 3)]
    empty = await host_month(app_client, host, room_type_id, month(end + timedelta(days=40)))
    assert empty == {}


async def test_malformed_month_is_422(app_client: httpx.AsyncClient, host: Actor) -> None:
    listing = await create_listing(app_client, host, start=day(1), end=day(3))
    wrong = []
    for bad_month in ("2030-13", "2030-00", "not-a-month", "20301", "2030-1-1"):
        host_read = await app_client.get(
            f"{API}/host/room-types/{listing.room_type_id}/calendar",
            params={"month": bad_month},
            headers=host.headers,
        )
        public = await app_client.get(
            f"{API}/lodgings/{listing.id}/calendar", params={"month": bad_month}
        )
        for where, response in (("host", host_read), ("public", public)):
            ok = response.status_code == 422 and response.headers["content-type"].startswith(
                "application/problem+json"
            )
            if not ok:
                wrong.append((where, bad_month, response.status_code, response.text[:200]))
    assert wrong == []


async def test_public_calendar_shows_availability(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    start = day(3)
    listing: Listing = await create_listing(
        app_client, host, start=start, end=start + timedelta(days=3), price=77_000, total_rooms=3
    )
    suite = await create_room_type(app_client, host, listing.id, name="Suite", capacity=4)
    await open_calendar(app_client, host, suite["id"], start, start + timedelta(days=1), price=1)
    await set_inventory(app_client, listing.room_type_id, start, held=1, sold=1)
    await set_inventory(app_client, listing.room_type_id, start + timedelta(days=1), held=0, sold=3)
    close = await put_calendar(
        app_client,
        host,
        listing.room_type_id,
        start + timedelta(days=2),
        start + timedelta(days=3),
        closed=True,
    )
    assert close.status_code == 200, close.text

    months = sorted({month(d) for d in nights(start, start + timedelta(days=3))})
    by_date: dict[str, dict[str, Any]] = {}
    for m in months:
        response = await app_client.get(
            f"{API}/lodgings/{listing.id}/calendar", params={"month": m}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["lodging_id"] == listing.id
        assert body["month"] == m
        room_types = {rt["room_type_id"]: rt for rt in body["room_types"]}
        assert set(room_types) == {listing.room_type_id, suite["id"]}
        standard = room_types[listing.room_type_id]
        assert standard["name"] == listing.room_type["name"]
        assert standard["capacity"] == 2
        assert room_types[suite["id"]]["capacity"] == 4
        for entry in standard["days"]:
            assert set(entry) >= {"date", "price", "available", "closed"}
            assert "held" not in entry
            assert "sold" not in entry
            by_date[entry["date"]] = entry

    first, second, third = (start + timedelta(days=i) for i in range(3))
    assert by_date[first.isoformat()]["available"] == 1
    assert by_date[second.isoformat()]["available"] == 0
    assert by_date[third.isoformat()]["closed"] is True
    assert all(e["price"] == 77_000 for e in by_date.values())


async def test_public_calendar_of_unknown_lodging_is_404(app_client: httpx.AsyncClient) -> None:
    for lodging_id in ("00000000-0000-0000-0000-000000000009", "nope"):
        response = await app_client.get(
            f"{API}/lodgings/{lodging_id}/calendar", params={"month": month(day(1))}
        )
        assert_problem(response, 404, "lodging_not_found")


async def test_nights_cannot_offer_more_rooms_than_the_room_type_has(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    room_type_id = await _room_type(app_client, host, total_rooms=3)
    response = await put_calendar(
        app_client, host, room_type_id, day(2), day(4), price=50_000, total_rooms=4
    )
    assert_problem(response, 422)
    assert await _days(app_client, host, room_type_id, day(2), day(4)) == {}


async def test_opened_nights_never_have_min_stay_above_max_stay(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """A night whose min_stay exceeds its max_stay can never be booked: refuse it or keep the
    pair consistent, but never store it."""
    room_type_id = await _room_type(app_client, host)
    response = await put_calendar(
        app_client, host, room_type_id, day(2), day(4), price=50_000, min_stay=40
    )
    if response.status_code == 200:
        days = await _days(app_client, host, room_type_id, day(2), day(4))
        assert all(d["min_stay"] <= d["max_stay"] for d in days.values()), days
    else:
        assert_problem(response, 422)

    await open_calendar(app_client, host, room_type_id, day(5), day(7), price=50_000, max_stay=3)
    refused = await put_calendar(app_client, host, room_type_id, day(5), day(7), min_stay=4)
    assert_problem(refused, 422)
    days = await _days(app_client, host, room_type_id, day(5), day(7))
    assert all((d["min_stay"], d["max_stay"]) == (1, 3) for d in days.values())


async def test_concurrent_openings_of_the_same_nights_never_fail_with_500(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """A double-clicked "open" (two identical requests at once) must not crash on the primary
    key of the nights both try to create."""
    room_type_id = await _room_type(app_client, host)
    responses = await asyncio.gather(
        *(
            put_calendar(app_client, host, room_type_id, day(2), day(12), price=70_000 + i)
            for i in range(3)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert all(s in (200, 409) for s in statuses), [r.text[:300] for r in responses]
    assert 200 in statuses
    days = await _days(app_client, host, room_type_id, day(2), day(12))
    assert len(days) == 10
    assert len({d["price"] for d in days.values()}) == 1, "one request's prices, not a mix"


async def test_shrinking_a_room_type_on_29_february_cuts_every_upcoming_night(
    app_client: httpx.AsyncClient, host: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leap day used to be a 500 (``today.replace(year=+2)``), and nights opened more than two
    years ahead kept offering the rooms the room type no longer has."""
    leap_day = date(2028, 2, 29)
    monkeypatch.setattr("haot.lodging.service.seoul_today", lambda: leap_day)
    lodging = await create_lodging(app_client, host)
    room_type = await create_room_type(app_client, host, lodging["id"], total_rooms=3)
    near, far = leap_day + timedelta(days=10), leap_day + timedelta(days=3 * 365)
    for start in (near, far):
        await open_calendar(app_client, host, room_type["id"], start, start + timedelta(days=2))

    shrunk = await app_client.patch(
        f"{API}/host/room-types/{room_type['id']}", json={"total_rooms": 1}, headers=host.headers
    )
    assert shrunk.status_code == 200, shrunk.text
    for start in (near, far):
        days = await _days(app_client, host, room_type["id"], start, start + timedelta(days=2))
        assert [d["total"] for d in days.values()] == [1, 1], start
