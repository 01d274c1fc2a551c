"""The host pages over HTTP (both engines): my lodgings, the lodging form (create, edit, delete),
room types, the calendar that opens, prices, closes and reopens nights, and reservations of my
lodgings with the host's cancel. Only hosts (and admins) see them; every refusal is the API's,
shown beside its field; another host's lodging is a 404; every form needs its CSRF token."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta

import httpx

from tests.lodging.factories import (
    API,
    FRIDAY,
    PASSWORD,
    SATURDAY,
    Actor,
    create_listing,
    create_lodging,
    create_room_type,
    day,
    make_host,
    make_user,
    next_weekday,
    set_inventory,
)
from tests.web.test_account_pages import HTML, csrf_of, form_page, sign_up

NIGHT = re.compile(
    r'data-testid="calendar-night" data-date="([\d-]+)" data-value="(\d+)" data-status="(\w+)"'
)


async def log_in(client: httpx.AsyncClient, actor: Actor) -> None:
    """Sign in on the log-in page as ``actor`` (an account made through the API)."""
    client.cookies.clear()
    token = await form_page(client, "/login")
    answer = await client.post(
        "/login", data={"csrf": token, "email": actor.email, "password": PASSWORD}, headers=HTML
    )
    assert answer.status_code == 303, answer.text


async def csrf(client: httpx.AsyncClient, path: str = "/host/lodgings") -> str:
    return await form_page(client, path)


def lodging_form(token: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf": token,
        "name": "Seaside Hanok",
        "description": "Waves at the door",
        "address": "1 Haeundae-ro",
        "city": "Busan",
        "district": "Haeundae",
        "latitude": "35.1587",
        "longitude": "129.1604",
        "amenities": "wifi, Parking , ",
        "image_urls": "https://img.example.com/sea.jpg\n\nhttps://img.example.com/sea-2.jpg\n",
        "max_guests": "4",
        "check_in_time": "16:00",
        "check_out_time": "10:30",
        "max_nights": "14",
        "days_before_0": "10",
        "refund_percent_0": "100",
        "days_before_1": "2",
        "refund_percent_1": "30",
        "days_before_2": "",
        "refund_percent_2": "",
    }
    return form | overrides


async def calendar_nights(
    client: httpx.AsyncClient, room_type_id: str, *days: date
) -> dict[str, tuple[int, str]]:
    """Price and status of each night the calendar pages of ``days``' months show, by date."""
    shown: dict[str, tuple[int, str]] = {}
    for month in sorted({f"{d:%Y-%m}" for d in days}):
        page = await client.get(
            f"/host/room-types/{room_type_id}/calendar", params={"month": month}, headers=HTML
        )
        assert page.status_code == 200, page.text
        shown |= {d: (int(price), status) for d, price, status in NIGHT.findall(page.text)}
    return shown


async def change_calendar(
    client: httpx.AsyncClient, room_type_id: str, **fields: str
) -> httpx.Response:
    token = await csrf(client, f"/host/room-types/{room_type_id}/calendar")
    return await client.post(
        f"/host/room-types/{room_type_id}/calendar",
        data={"csrf": token, **fields},
        headers=HTML,
    )


async def test_the_host_pages_are_for_hosts(app_client: httpx.AsyncClient) -> None:
    for path in (
        "/host/lodgings",
        "/host/reservations",
        f"/host/room-types/{uuid.uuid4()}/calendar",
    ):
        page = await app_client.get(path, headers=HTML)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/login?next=%2Fhost%2F"), path

    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    refused = await app_client.get("/host/lodgings", headers=HTML)
    assert refused.status_code == 403
    assert "이 계정으로는 볼 수 없는 페이지입니다" in refused.text
    assert 'action="/host/lodgings/new"' not in refused.text


async def test_a_host_creates_lists_and_edits_a_lodging_and_its_room_types(
    app_client: httpx.AsyncClient,
) -> None:
    await log_in(app_client, await make_host(app_client))
    empty = await app_client.get("/host/lodgings", headers=HTML)
    assert empty.status_code == 200
    assert 'data-testid="host-lodging"' not in empty.text
    assert 'href="/host/lodgings/new"' in empty.text

    token = await csrf(app_client, "/host/lodgings/new")
    created = await app_client.post("/host/lodgings/new", data=lodging_form(token), headers=HTML)
    assert created.status_code == 303, created.text
    path = created.headers["location"]
    assert re.fullmatch(r"/host/lodgings/[0-9a-f-]{36}", path), path
    lodging_id = path.rsplit("/", 1)[1]

    listed = await app_client.get("/host/lodgings", headers=HTML)
    assert f'<a href="{path}">Seaside Hanok</a>' in listed.text

    detail = await app_client.get(f"{API}/lodgings/{lodging_id}")
    body = detail.json()
    assert sorted(body["amenities"]) == ["parking", "wifi"]
    assert body["image_urls"] == [
        "https://img.example.com/sea.jpg",
        "https://img.example.com/sea-2.jpg",
    ]
    assert body["cancellation_policy"] == [
        {"days_before": 10, "refund_percent": 100},
        {"days_before": 2, "refund_percent": 30},
    ]
    assert (body["max_guests"], body["max_nights"], body["check_in_time"][:5]) == (4, 14, "16:00")

    page = await app_client.get(path, headers=HTML)
    assert page.status_code == 200
    assert 'value="Seaside Hanok"' in page.text
    assert f'value="{", ".join(body["amenities"])}"' in page.text
    assert 'id="days_before_1" name="days_before_1" type="number" min="0" max="365" value="2"' in (
        page.text
    )

    edited = await app_client.post(
        path,
        data=lodging_form(csrf_of(page.text), name="Seaside Hanok Annex", max_guests="6"),
        headers=HTML,
    )
    assert edited.status_code == 303, edited.text
    page = await app_client.get(edited.headers["location"], headers=HTML)
    assert "<h1>Seaside Hanok Annex</h1>" in page.text
    assert 'role="status"' in page.text  # "saved"

    added = await app_client.post(
        f"{path}/room-types",
        data={
            "csrf": csrf_of(page.text),
            "name": "Ocean Twin",
            "capacity": "2",
            "total_rooms": "3",
        },
        headers=HTML,
    )
    assert added.status_code == 303, added.text
    page = await app_client.get(path, headers=HTML)
    room = re.search(r'data-testid="host-room-type" data-id="([0-9a-f-]{36})"', page.text)
    assert room, page.text
    room_type_id = room.group(1)
    assert f'href="/host/room-types/{room_type_id}/calendar?lodging={lodging_id}"' in page.text

    renamed = await app_client.post(
        f"{path}/room-types/{room_type_id}",
        data={
            "csrf": csrf_of(page.text),
            "name": "Ocean Twin+",
            "capacity": "3",
            "total_rooms": "4",
        },
        headers=HTML,
    )
    assert renamed.status_code == 303, renamed.text
    rooms = (await app_client.get(f"{API}/lodgings/{lodging_id}")).json()["room_types"]
    assert [(r["name"], r["capacity"], r["total_rooms"]) for r in rooms] == [("Ocean Twin+", 3, 4)]

    refused = await app_client.post(
        f"{path}/room-types/{room_type_id}",
        data={
            "csrf": csrf_of(page.text),
            "name": "Ocean Twin+",
            "capacity": "0",
            "total_rooms": "4",
        },
        headers=HTML,
    )
    assert refused.status_code == 422
    field = f"room-{room_type_id}-capacity"
    assert f'aria-describedby="{field}-error"' in refused.text
    assert f'<p class="error" id="{field}-error">' in refused.text
    assert f'id="{field}" name="capacity" type="number" value="0"' in refused.text  # as typed

    deleted = await app_client.post(
        f"{path}/room-types/{room_type_id}/delete", data={"csrf": csrf_of(page.text)}, headers=HTML
    )
    assert deleted.status_code == 303
    assert (await app_client.get(f"{API}/lodgings/{lodging_id}")).json()["room_types"] == []


async def test_a_refused_lodging_form_shows_each_error_beside_its_field(
    app_client: httpx.AsyncClient,
) -> None:
    await log_in(app_client, await make_host(app_client))
    token = await csrf(app_client, "/host/lodgings/new")
    form = lodging_form(
        token, name="  ", district="", latitude="north", refund_percent_1="150", max_guests=""
    )
    refused = await app_client.post("/host/lodgings/new", data=form, headers=HTML)
    assert refused.status_code == 422, refused.text
    for field in ("name", "district", "latitude"):
        assert f'aria-describedby="{field}-error"' in refused.text or (
            f'aria-describedby="{field}-hint {field}-error"' in refused.text
        ), field
        assert f'<p class="error" id="{field}-error">' in refused.text, field
    assert '<p class="error" id="cancellation_policy-error">' in refused.text
    assert 'aria-describedby="tiers-hint cancellation_policy-error"' in refused.text
    assert 'value="1 Haeundae-ro"' in refused.text  # what was typed stays
    assert 'value="150"' in refused.text
    assert (await app_client.get("/host/lodgings", headers=HTML)).text.count("host-lodging") == 0


async def test_the_calendar_opens_prices_closes_and_reopens_nights(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    lodging = await create_lodging(app_client, host, name="Calendar House")
    room_type = await create_room_type(app_client, host, lodging["id"], total_rooms=3)
    await log_in(app_client, host)
    calendar = f"/host/room-types/{room_type['id']}/calendar"

    page = await app_client.get(calendar, params={"lodging": lodging["id"]}, headers=HTML)
    assert page.status_code == 200, page.text
    assert "Calendar House" in page.text
    assert 'data-testid="calendar-night"' not in page.text  # nothing open yet
    assert re.search(
        rf'<form class="account range" data-testid="open-range" action="{calendar}" method="post"',
        page.text,
    )
    for name in ("start", "end", "price", "weekend_price", "total_rooms", "min_stay", "max_stay"):
        assert f'name="{name}"' in page.text, name
    assert 'name="closed" value="true"' in page.text
    assert 'name="closed" value="false"' in page.text

    monday = next_weekday(day(9), 0)
    sunday_after = monday + timedelta(days=7)
    opened = await change_calendar(
        app_client,
        room_type["id"],
        start=monday.isoformat(),
        end=sunday_after.isoformat(),
        price="80000",
        weekend_price="125000",
        total_rooms="2",
        min_stay="",
        max_stay="",
        closed="",
        lodging=lodging["id"],
    )
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == (
        f"{calendar}?month={monday:%Y-%m}&lodging={lodging['id']}&saved=1"
    )
    week = [monday + timedelta(days=n) for n in range(7)]
    shown = await calendar_nights(app_client, room_type["id"], *week)
    for night in week:
        weekend = night.weekday() in (FRIDAY, SATURDAY)
        assert shown[night.isoformat()] == (125_000 if weekend else 80_000, "OPEN"), night
    assert (monday - timedelta(days=1)).isoformat() not in shown
    assert sunday_after.isoformat() not in shown  # the end is not included

    wednesday = monday + timedelta(days=2)
    one_night = {"start": wednesday.isoformat(), "end": (wednesday + timedelta(days=1)).isoformat()}
    closed = await change_calendar(app_client, room_type["id"], **one_night, closed="true")
    assert closed.status_code == 303, closed.text
    shown = await calendar_nights(app_client, room_type["id"], wednesday)
    assert shown[wednesday.isoformat()] == (80_000, "CLOSED")
    assert shown[monday.isoformat()] == (80_000, "OPEN")
    page = await app_client.get(calendar, params={"month": f"{wednesday:%Y-%m}"}, headers=HTML)
    assert 'data-testid="reopen-night"' in page.text
    search = await app_client.get(
        f"{API}/lodgings/{lodging['id']}/calendar", params={"month": f"{wednesday:%Y-%m}"}
    )
    public = {d["date"]: d for d in search.json()["room_types"][0]["days"]}
    assert public[wednesday.isoformat()]["closed"] is True

    reopened = await change_calendar(app_client, room_type["id"], **one_night, closed="false")
    assert reopened.status_code == 303, reopened.text
    shown = await calendar_nights(app_client, room_type["id"], wednesday)
    assert shown[wednesday.isoformat()] == (80_000, "OPEN")

    repriced = await change_calendar(app_client, room_type["id"], **one_night, price="70000")
    assert repriced.status_code == 303
    shown = await calendar_nights(app_client, room_type["id"], wednesday)
    assert shown[wednesday.isoformat()] == (70_000, "OPEN")

    months = await app_client.get(calendar, params={"month": f"{monday:%Y-%m}"}, headers=HTML)
    following = (monday.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert f'href="{calendar}?month={following:%Y-%m}"' in months.text
    assert (
        await app_client.get(calendar, params={"month": "2026-13"}, headers=HTML)
    ).status_code == 404


async def test_a_refused_range_shows_the_error_beside_its_field(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    lodging = await create_lodging(app_client, host)
    room_type = await create_room_type(app_client, host, lodging["id"])
    await log_in(app_client, host)
    start = day(12)

    backwards = await change_calendar(
        app_client,
        room_type["id"],
        start=start.isoformat(),
        end=(start - timedelta(days=2)).isoformat(),
        price="90000",
        month=f"{start:%Y-%m}",
    )
    assert backwards.status_code == 422, backwards.text
    assert '<p class="error" id="end-error">' in backwards.text
    assert 'aria-invalid="true" aria-describedby="end-error"' in backwards.text
    assert 'value="90000"' in backwards.text  # what was typed stays
    assert 'data-testid="open-range"' in backwards.text

    no_price = await change_calendar(
        app_client,
        room_type["id"],
        start=start.isoformat(),
        end=(start + timedelta(days=2)).isoformat(),
    )
    assert no_price.status_code == 422
    assert '<p class="error" id="price-error">' in no_price.text

    too_many = await change_calendar(
        app_client,
        room_type["id"],
        start=start.isoformat(),
        end=(start + timedelta(days=2)).isoformat(),
        price="90000",
        total_rooms="99",
    )
    assert too_many.status_code == 422
    assert '<p class="error" id="total_rooms-error">' in too_many.text

    opened = await change_calendar(
        app_client,
        room_type["id"],
        start=start.isoformat(),
        end=(start + timedelta(days=2)).isoformat(),
        price="90000",
    )
    assert opened.status_code == 303
    await set_inventory(app_client, room_type["id"], start, held=1, sold=1)
    below_booked = await change_calendar(
        app_client,
        room_type["id"],
        start=start.isoformat(),
        end=(start + timedelta(days=1)).isoformat(),
        total_rooms="1",
    )
    assert below_booked.status_code == 409
    assert '<p class="error" id="total_rooms-error">' in below_booked.text

    past = await change_calendar(
        app_client, room_type["id"], start=day(-3).isoformat(), end=day(2).isoformat(), price="1"
    )
    assert past.status_code == 422
    assert '<p class="error" id="start-error">' in past.text
    shown = await calendar_nights(app_client, room_type["id"], day(-3), day(2))
    assert not [night for night in shown if night < day(0).isoformat()]  # the past stays shut


async def test_another_hosts_lodging_is_not_found(app_client: httpx.AsyncClient) -> None:
    owner = await make_host(app_client, "owner")
    listing = await create_listing(app_client, owner, name="Not Yours")
    await log_in(app_client, await make_host(app_client, "other"))
    token = await csrf(app_client)
    lodging_path = f"/host/lodgings/{listing.id}"
    calendar = f"/host/room-types/{listing.room_type_id}/calendar"

    assert (await app_client.get(lodging_path, headers=HTML)).status_code == 404
    assert (await app_client.get(f"{lodging_path}/delete", headers=HTML)).status_code == 404
    assert (await app_client.get(calendar, headers=HTML)).status_code == 404
    assert (await app_client.get("/host/lodgings/not-an-id", headers=HTML)).status_code == 404
    edit = await app_client.post(lodging_path, data=lodging_form(token), headers=HTML)
    assert edit.status_code == 404
    change = await app_client.post(
        calendar,
        data={
            "csrf": token,
            "start": day(3).isoformat(),
            "end": day(4).isoformat(),
            "closed": "true",
        },
        headers=HTML,
    )
    assert change.status_code == 404
    delete = await app_client.post(f"{lodging_path}/delete", data={"csrf": token}, headers=HTML)
    assert delete.status_code == 404
    mine = await app_client.get("/host/lodgings", headers=HTML)
    assert "Not Yours" not in mine.text
    assert (await app_client.get(f"{API}/lodgings/{listing.id}")).status_code == 200


async def test_a_host_deletes_a_lodging_after_confirming(app_client: httpx.AsyncClient) -> None:
    host = await make_host(app_client)
    lodging = await create_lodging(app_client, host, name="Short Lived")
    await log_in(app_client, host)
    confirm = await app_client.get(f"/host/lodgings/{lodging['id']}/delete", headers=HTML)
    assert confirm.status_code == 200
    assert 'data-testid="confirm-delete"' in confirm.text
    deleted = await app_client.post(
        f"/host/lodgings/{lodging['id']}/delete", data={"csrf": csrf_of(confirm.text)}, headers=HTML
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/host/lodgings"
    assert "Short Lived" not in (await app_client.get("/host/lodgings", headers=HTML)).text
    assert (await app_client.get(f"{API}/lodgings/{lodging['id']}")).status_code == 404


async def test_the_host_sees_and_cancels_reservations_of_their_lodgings(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=70_000, name="Booked House")
    guest = await make_user(app_client)
    stay = {
        "room_type_id": listing.room_type_id,
        "check_in": day(6).isoformat(),
        "check_out": day(8).isoformat(),
        "guests": 2,
    }
    booked = await app_client.post(
        f"{API}/reservations",
        json=stay,
        headers=guest.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert booked.status_code == 201, booked.text
    reservation_id = booked.json()["id"]
    # The guest's name reaches the reservation context by the event of their sign-up.
    for _ in range(200):
        listed = await app_client.get(f"{API}/host/reservations", headers=host.headers)
        if listed.json()["items"][0]["guest_name"] is not None:
            break
        await asyncio.sleep(0.05)

    await log_in(app_client, host)
    page = await app_client.get("/host/reservations", headers=HTML)
    assert page.status_code == 200, page.text
    card = re.search(
        rf'data-testid="host-reservation" data-status="(\w+)" data-id="{reservation_id}"', page.text
    )
    assert card, page.text
    assert card.group(1) == "PENDING"
    assert "Booked House" in page.text
    assert '<p data-testid="guest-name">예약자: Guest</p>' in page.text
    assert 'data-value="140000"' in page.text
    assert f'action="/host/reservations/{reservation_id}/cancel"' in page.text

    only_confirmed = await app_client.get(
        "/host/reservations", params={"status": "CONFIRMED"}, headers=HTML
    )
    assert reservation_id not in only_confirmed.text
    of_lodging = await app_client.get(
        "/host/reservations", params={"lodging_id": listing.id}, headers=HTML
    )
    assert reservation_id in of_lodging.text

    no_token = await app_client.post(
        f"/host/reservations/{reservation_id}/cancel", data={}, headers=HTML
    )
    assert no_token.status_code == 403
    cancelled = await app_client.post(
        f"/host/reservations/{reservation_id}/cancel",
        data={
            "csrf": csrf_of(page.text),
            "reason": "Pipes burst",
            "back": "/host/reservations?page=1",
        },
        headers=HTML,
    )
    assert cancelled.status_code == 303, cancelled.text
    assert cancelled.headers["location"] == "/host/reservations?page=1"
    after = await app_client.get("/host/reservations", headers=HTML)
    card = re.search(
        rf'data-testid="host-reservation" data-status="(\w+)" data-id="{reservation_id}"',
        after.text,
    )
    assert card, after.text
    assert card.group(1) == "CANCELLED"
    assert f'action="/host/reservations/{reservation_id}/cancel"' not in after.text
    read = await app_client.get(f"{API}/reservations/{reservation_id}", headers=guest.headers)
    assert read.json()["status"] == "CANCELLED"
    assert read.json()["cancelled_by"] == "HOST"

    other = await make_host(app_client, "other")
    await log_in(app_client, other)
    theirs = await app_client.get("/host/reservations", headers=HTML)
    assert reservation_id not in theirs.text
    refused = await app_client.post(
        f"/host/reservations/{reservation_id}/cancel",
        data={"csrf": csrf_of(theirs.text)},
        headers=HTML,
    )
    assert refused.status_code == 404


async def test_every_host_form_needs_its_csrf_token(app_client: httpx.AsyncClient) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host)
    await log_in(app_client, host)
    posts = {
        "/host/lodgings/new": lodging_form(""),
        f"/host/lodgings/{listing.id}": lodging_form("x"),
        f"/host/lodgings/{listing.id}/delete": {},
        f"/host/lodgings/{listing.id}/room-types": {
            "name": "A",
            "capacity": "1",
            "total_rooms": "1",
        },
        f"/host/room-types/{listing.room_type_id}/calendar": {
            "start": day(3).isoformat(),
            "end": day(4).isoformat(),
            "closed": "true",
        },
    }
    for path, form in posts.items():
        answer = await app_client.post(path, data=form, headers=HTML)
        assert answer.status_code == 403, path
        assert "text/html" in answer.headers["content-type"], path
    nights = await calendar_nights(app_client, listing.room_type_id, day(3))
    assert nights[day(3).isoformat()][1] == "OPEN"
    assert (await app_client.get(f"{API}/lodgings/{listing.id}")).status_code == 200
