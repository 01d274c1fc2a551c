"""Who may touch what: anonymous → 401, USER → 403, another host → 404, ADMIN → anything."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.lodging.factories import (
    API,
    Actor,
    Listing,
    assert_problem,
    create_listing,
    create_lodging,
    day,
    host_month,
    month,
)


def host_routes(listing: Listing | None = None) -> list[tuple[str, str, Any]]:
    lodging_id = listing.id if listing else "00000000-0000-0000-0000-000000000001"
    room_type_id = listing.room_type_id if listing else "00000000-0000-0000-0000-000000000002"
    calendar = {"start": day(1).isoformat(), "end": day(2).isoformat(), "price": 1}
    return [
        ("POST", "/host/lodgings", None),
        ("GET", "/host/lodgings", None),
        ("GET", f"/host/lodgings/{lodging_id}", None),
        ("PATCH", f"/host/lodgings/{lodging_id}", {"name": "Mine now"}),
        ("DELETE", f"/host/lodgings/{lodging_id}", None),
        (
            "POST",
            f"/host/lodgings/{lodging_id}/room-types",
            {"name": "Extra", "capacity": 2, "total_rooms": 1},
        ),
        ("GET", f"/host/room-types/{room_type_id}", None),
        ("PATCH", f"/host/room-types/{room_type_id}", {"name": "Mine now"}),
        ("DELETE", f"/host/room-types/{room_type_id}", None),
        ("PUT", f"/host/room-types/{room_type_id}/calendar", calendar),
        ("GET", f"/host/room-types/{room_type_id}/calendar?month={month(day(1))}", None),
    ]


@pytest.fixture
async def listing_of_a(app_client: httpx.AsyncClient, host: Actor) -> Listing:
    return await create_listing(app_client, host, start=day(1), end=day(10), price=80_000)


async def test_anonymous_gets_401_on_host_routes_but_may_read(
    app_client: httpx.AsyncClient, listing_of_a: Listing
) -> None:
    for method, path, body in host_routes(listing_of_a):
        response = await app_client.request(method, f"{API}{path}", json=body)
        assert_problem(response, 401)
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    for headers in ({"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic abc"}):
        response = await app_client.get(f"{API}/host/lodgings", headers=headers)
        assert_problem(response, 401)

    # Public reads need no token.
    assert (await app_client.get(f"{API}/lodgings")).status_code == 200
    assert (await app_client.get(f"{API}/lodgings/{listing_of_a.id}")).status_code == 200
    calendar = await app_client.get(
        f"{API}/lodgings/{listing_of_a.id}/calendar", params={"month": month(day(1))}
    )
    assert calendar.status_code == 200


async def test_user_role_gets_403_on_host_routes(
    app_client: httpx.AsyncClient, guest: Actor, listing_of_a: Listing
) -> None:
    for method, path, body in host_routes(listing_of_a):
        response = await app_client.request(
            method, f"{API}{path}", json=body, headers=guest.headers
        )
        assert_problem(response, 403, "forbidden")


async def test_other_host_gets_404_on_everything_of_host_a(
    app_client: httpx.AsyncClient, host: Actor, other_host: Actor, listing_of_a: Listing
) -> None:
    for method, path, body in host_routes(listing_of_a)[2:]:
        response = await app_client.request(
            method, f"{API}{path}", json=body, headers=other_host.headers
        )
        code = "lodging_not_found" if path.startswith("/host/lodgings/") else "room_type_not_found"
        assert_problem(response, 404, code)

    listed = await app_client.get(f"{API}/host/lodgings", headers=other_host.headers)
    assert listed.json()["total"] == 0
    assert listed.json()["items"] == []

    # Nothing of A's changed.
    mine = await app_client.get(f"{API}/host/lodgings/{listing_of_a.id}", headers=host.headers)
    assert mine.status_code == 200
    assert mine.json()["name"] == listing_of_a.lodging["name"]
    assert [rt["name"] for rt in mine.json()["room_types"]] == [listing_of_a.room_type["name"]]
    days = await host_month(app_client, host, listing_of_a.room_type_id, month(day(1)))
    assert days[day(1).isoformat()]["price"] == 80_000


async def test_admin_may_act_on_any_lodging(
    app_client: httpx.AsyncClient, host: Actor, admin: Actor, listing_of_a: Listing
) -> None:
    read = await app_client.get(f"{API}/host/lodgings/{listing_of_a.id}", headers=admin.headers)
    assert read.status_code == 200, read.text

    patched = await app_client.patch(
        f"{API}/host/lodgings/{listing_of_a.id}",
        json={"name": "Fixed by admin"},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Fixed by admin"
    assert patched.json()["host_id"] == host.id

    room_type = await app_client.post(
        f"{API}/host/lodgings/{listing_of_a.id}/room-types",
        json={"name": "Admin Suite", "capacity": 4, "total_rooms": 1},
        headers=admin.headers,
    )
    assert room_type.status_code == 201, room_type.text

    calendar = await app_client.put(
        f"{API}/host/room-types/{listing_of_a.room_type_id}/calendar",
        json={"start": day(1).isoformat(), "end": day(3).isoformat(), "price": 90_000},
        headers=admin.headers,
    )
    assert calendar.status_code == 200, calendar.text
    read_calendar = await app_client.get(
        f"{API}/host/room-types/{listing_of_a.room_type_id}/calendar",
        params={"month": month(day(1))},
        headers=admin.headers,
    )
    assert read_calendar.status_code == 200, read_calendar.text

    # The host sees the admin's changes; the lodging is still the host's.
    days = await host_month(app_client, host, listing_of_a.room_type_id, month(day(1)))
    assert days[day(1).isoformat()]["price"] == 90_000
    mine = await app_client.get(f"{API}/host/lodgings", headers=host.headers)
    assert [item["id"] for item in mine.json()["items"]] == [listing_of_a.id]


async def test_admin_lists_all_lodgings_and_may_delete(
    app_client: httpx.AsyncClient, host: Actor, other_host: Actor, admin: Actor
) -> None:
    a = await create_lodging(app_client, host)
    b = await create_lodging(app_client, other_host)
    listed = await app_client.get(f"{API}/host/lodgings", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 2
    assert {item["id"] for item in listed.json()["items"]} == {a["id"], b["id"]}

    deleted = await app_client.delete(f"{API}/host/lodgings/{b['id']}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    gone = await app_client.get(f"{API}/host/lodgings/{b['id']}", headers=other_host.headers)
    assert_problem(gone, 404, "lodging_not_found")

    # What an admin creates is the admin's own.
    created = await create_lodging(app_client, admin)
    assert created["host_id"] == admin.id
    hidden = await app_client.get(f"{API}/host/lodgings/{created['id']}", headers=host.headers)
    assert_problem(hidden, 404, "lodging_not_found")


async def test_a_host_reads_one_room_type_of_theirs(
    app_client: httpx.AsyncClient, host: Actor, listing_of_a: Listing
) -> None:
    url = f"{API}/host/room-types/{listing_of_a.room_type_id}"
    own = await app_client.get(url, headers=host.headers)
    assert own.status_code == 200, own.text
    assert own.json() == {
        "id": listing_of_a.room_type_id,
        "lodging_id": listing_of_a.id,
        "name": listing_of_a.room_type["name"],
        "capacity": listing_of_a.room_type["capacity"],
        "total_rooms": listing_of_a.room_type["total_rooms"],
    }
    assert_problem(
        await app_client.get(f"{API}/host/room-types/not-a-uuid", headers=host.headers), 404
    )
    deleted = await app_client.delete(url, headers=host.headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await app_client.get(url, headers=host.headers), 404, "room_type_not_found")
