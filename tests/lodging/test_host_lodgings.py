"""Host lodging and room type CRUD, and validation of their bodies."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.lodging.factories import (
    API,
    Actor,
    assert_problem,
    confirm_hold,
    create_lodging,
    create_room_type,
    day,
    hold_night,
    lodging_payload,
    open_calendar,
    release_hold,
)


async def test_create_lodging_answers_201_with_the_stored_lodging_and_defaults(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    payload = lodging_payload(amenities=[" WiFi ", "Parking"])
    response = await app_client.post(f"{API}/host/lodgings", json=payload, headers=host.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["host_id"] == host.id
    assert body["name"] == payload["name"]
    assert body["description"] == payload["description"]
    assert body["address"] == payload["address"]
    assert body["region"] == {"city": "Seoul", "district": "Gangnam"}
    assert body["latitude"] == pytest.approx(payload["latitude"])
    assert body["longitude"] == pytest.approx(payload["longitude"])
    assert sorted(body["amenities"]) == ["parking", "wifi"]
    assert body["image_urls"] == payload["image_urls"]
    assert body["max_guests"] == 4
    assert body["check_in_time"].startswith("15:00")
    assert body["check_out_time"].startswith("11:00")
    assert body["max_nights"] == 30
    assert body["cancellation_policy"] == payload["cancellation_policy"]
    assert body["rating"] is None
    assert body["review_count"] == 0
    assert body["created_at"]
    assert body["updated_at"]

    # Only the required fields: defaults apply.
    minimal = {
        key: lodging_payload()[key]
        for key in ("name", "address", "region", "latitude", "longitude")
    }
    response = await app_client.post(f"{API}/host/lodgings", json=minimal, headers=host.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["description"] == ""
    assert body["amenities"] == []
    assert body["image_urls"] == []
    assert body["max_guests"] == 2
    assert body["max_nights"] == 30
    assert body["check_in_time"].startswith("15:00")
    assert body["check_out_time"].startswith("11:00")
    assert [t["days_before"] for t in body["cancellation_policy"]] == [7, 3, 0]


async def test_host_reads_and_lists_own_lodgings(
    app_client: httpx.AsyncClient, host: Actor, other_host: Actor
) -> None:
    first = await create_lodging(app_client, host, name="First")
    second = await create_lodging(app_client, host, name="Second")
    await create_lodging(app_client, other_host, name="Not mine")

    read = await app_client.get(f"{API}/host/lodgings/{first['id']}", headers=host.headers)
    assert read.status_code == 200, read.text
    assert read.json()["name"] == "First"

    listed = await app_client.get(f"{API}/host/lodgings", headers=host.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["page"] == 1
    assert page["total"] == 2
    assert {item["id"] for item in page["items"]} == {first["id"], second["id"]}
    assert all(item["host_id"] == host.id for item in page["items"])

    paged = await app_client.get(
        f"{API}/host/lodgings", params={"page": 2, "size": 1}, headers=host.headers
    )
    assert paged.status_code == 200, paged.text
    assert paged.json()["size"] == 1
    assert paged.json()["total"] == 2
    assert len(paged.json()["items"]) == 1


async def test_patch_lodging_changes_only_the_given_fields(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    response = await app_client.patch(
        f"{API}/host/lodgings/{lodging['id']}",
        json={
            "name": "Renamed",
            "region": {"city": "Busan", "district": "Haeundae"},
            "amenities": ["pool"],
            "max_nights": 5,
            "cancellation_policy": [{"days_before": 0, "refund_percent": 0}],
        },
        headers=host.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["region"] == {"city": "Busan", "district": "Haeundae"}
    assert body["amenities"] == ["pool"]
    assert body["max_nights"] == 5
    assert body["cancellation_policy"] == [{"days_before": 0, "refund_percent": 0}]
    unchanged = ("description", "address", "image_urls", "max_guests", "host_id", "created_at")
    for field in unchanged:
        assert body[field] == lodging[field], field
    assert body["updated_at"] >= lodging["updated_at"]

    again = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert again.json()["name"] == "Renamed"


async def test_delete_lodging_removes_it_everywhere(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    room_type = await create_room_type(app_client, host, lodging["id"])
    await open_calendar(app_client, host, room_type["id"], day(1), day(5))

    deleted = await app_client.delete(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""

    gone = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert_problem(gone, 404, "lodging_not_found")
    public = await app_client.get(f"{API}/lodgings/{lodging['id']}")
    assert_problem(public, 404, "lodging_not_found")
    listed = await app_client.get(f"{API}/host/lodgings", headers=host.headers)
    assert listed.json()["total"] == 0
    again = await app_client.delete(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert_problem(again, 404, "lodging_not_found")
    room = await app_client.patch(
        f"{API}/host/room-types/{room_type['id']}", json={"name": "x"}, headers=host.headers
    )
    assert_problem(room, 404, "room_type_not_found")


async def test_delete_lodging_with_future_bookings_is_refused(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    room_type = await create_room_type(app_client, host, lodging["id"])
    await open_calendar(app_client, host, room_type["id"], day(3), day(6))
    reservation_id = await hold_night(app_client, room_type["id"], day(4))

    refused = await app_client.delete(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert_problem(refused, 409, "lodging_has_bookings")
    still = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert still.status_code == 200

    await confirm_hold(app_client, reservation_id)  # held → sold
    refused = await app_client.delete(
        f"{API}/host/room-types/{room_type['id']}", headers=host.headers
    )
    assert_problem(refused, 409, "lodging_has_bookings")
    refused = await app_client.delete(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert_problem(refused, 409, "lodging_has_bookings")

    await release_hold(app_client, reservation_id)  # cancelled
    deleted = await app_client.delete(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert deleted.status_code == 204, deleted.text


async def test_room_type_create_update_delete(app_client: httpx.AsyncClient, host: Actor) -> None:
    lodging = await create_lodging(app_client, host)
    created = await app_client.post(
        f"{API}/host/lodgings/{lodging['id']}/room-types",
        json={"name": "Deluxe Twin", "capacity": 3, "total_rooms": 5},
        headers=host.headers,
    )
    assert created.status_code == 201, created.text
    room_type = created.json()
    uuid.UUID(room_type["id"])
    assert room_type["lodging_id"] == lodging["id"]
    assert (room_type["name"], room_type["capacity"], room_type["total_rooms"]) == (
        "Deluxe Twin",
        3,
        5,
    )

    detail = await app_client.get(f"{API}/lodgings/{lodging['id']}")
    assert detail.status_code == 200, detail.text
    assert [rt["id"] for rt in detail.json()["room_types"]] == [room_type["id"]]

    patched = await app_client.patch(
        f"{API}/host/room-types/{room_type['id']}", json={"capacity": 4}, headers=host.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["capacity"] == 4
    assert patched.json()["name"] == "Deluxe Twin"
    assert patched.json()["total_rooms"] == 5

    deleted = await app_client.delete(
        f"{API}/host/room-types/{room_type['id']}", headers=host.headers
    )
    assert deleted.status_code == 204, deleted.text
    detail = await app_client.get(f"{API}/lodgings/{lodging['id']}")
    assert detail.json()["room_types"] == []
    again = await app_client.delete(
        f"{API}/host/room-types/{room_type['id']}", headers=host.headers
    )
    assert_problem(again, 404, "room_type_not_found")


async def test_unknown_or_malformed_ids_are_404_for_hosts(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    for lodging_id in (str(uuid.UUID(int=1)), "not-a-uuid"):
        await _all_404(app_client, host, lodging_id)


async def _all_404(app_client: httpx.AsyncClient, host: Actor, lodging_id: str) -> None:
    for method, path, body in [
        ("GET", f"/host/lodgings/{lodging_id}", None),
        ("PATCH", f"/host/lodgings/{lodging_id}", {"name": "x"}),
        ("DELETE", f"/host/lodgings/{lodging_id}", None),
        (
            "POST",
            f"/host/lodgings/{lodging_id}/room-types",
            {"name": "x", "capacity": 1, "total_rooms": 1},
        ),
    ]:
        response = await app_client.request(method, f"{API}{path}", json=body, headers=host.headers)
        assert_problem(response, 404, "lodging_not_found")
    for method, path, body in [
        ("PATCH", f"/host/room-types/{lodging_id}", {"name": "x"}),
        ("DELETE", f"/host/room-types/{lodging_id}", None),
        (
            "PUT",
            f"/host/room-types/{lodging_id}/calendar",
            {"start": day(1).isoformat(), "end": day(2).isoformat(), "price": 1},
        ),
    ]:
        response = await app_client.request(method, f"{API}{path}", json=body, headers=host.headers)
        assert_problem(response, 404, "room_type_not_found")


INVALID_LODGINGS: list[tuple[str, dict[str, Any]]] = [
    ("mass-assign host_id", {"host_id": str(uuid.UUID(int=7))}),
    ("mass-assign id", {"id": str(uuid.UUID(int=7))}),
    ("mass-assign rating", {"rating": 5.0}),
    ("mass-assign review_count", {"review_count": 99}),
    ("unknown field", {"stars": 5}),
    ("empty name", {"name": "   "}),
    ("name too long", {"name": "x" * 201}),
    ("latitude out of range", {"latitude": 91}),
    ("longitude out of range", {"longitude": -181}),
    ("region without district", {"region": {"city": "Seoul"}}),
    ("image url not http", {"image_urls": ["ftp://img.example.com/a.jpg"]}),
    ("max_guests zero", {"max_guests": 0}),
    ("max_nights over platform limit", {"max_nights": 31}),
    ("check_in_time malformed", {"check_in_time": "25:00"}),
    ("empty cancellation policy", {"cancellation_policy": []}),
    (
        "duplicate refund tiers",
        {
            "cancellation_policy": [
                {"days_before": 3, "refund_percent": 100},
                {"days_before": 3, "refund_percent": 50},
            ]
        },
    ),
    ("refund over 100%", {"cancellation_policy": [{"days_before": 1, "refund_percent": 101}]}),
    ("amenities not a list", {"amenities": "wifi"}),
]


async def test_invalid_lodging_body_is_422(app_client: httpx.AsyncClient, host: Actor) -> None:
    wrong = []
    for name, overrides in INVALID_LODGINGS:
        response = await app_client.post(
            f"{API}/host/lodgings", json=lodging_payload(**overrides), headers=host.headers
        )
        if (response.status_code, response.json().get("code")) != (422, "validation_error"):
            wrong.append((name, response.status_code, response.text[:200]))
        else:
            assert_problem(response, 422, "validation_error")
    assert wrong == []
    for field in ("name", "address", "region", "latitude", "longitude"):
        body = lodging_payload()
        del body[field]
        response = await app_client.post(f"{API}/host/lodgings", json=body, headers=host.headers)
        assert_problem(response, 422, "validation_error")
    not_json = await app_client.post(
        f"{API}/host/lodgings",
        content=b"{not json",
        headers={**host.headers, "content-type": "application/json"},
    )
    assert_problem(not_json, 422)
    listed = await app_client.get(f"{API}/host/lodgings", headers=host.headers)
    assert listed.json()["total"] == 0


INVALID_PATCHES: list[tuple[str, dict[str, Any]]] = [
    ("host_id", {"host_id": str(uuid.UUID(int=7))}),
    ("id", {"id": str(uuid.UUID(int=7))}),
    ("empty name", {"name": ""}),
    ("max_nights 0", {"max_nights": 0}),
    ("latitude", {"latitude": -90.5}),
    ("empty policy", {"cancellation_policy": []}),
    ("null region city", {"region": {"city": None, "district": "x"}}),
]


async def test_invalid_lodging_patch_is_422_and_changes_nothing(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    wrong = []
    for name, patch in INVALID_PATCHES:
        response = await app_client.patch(
            f"{API}/host/lodgings/{lodging['id']}", json=patch, headers=host.headers
        )
        if (response.status_code, response.json().get("code")) != (422, "validation_error"):
            wrong.append((name, response.status_code, response.text[:200]))
    assert wrong == []
    again = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert again.json() | {"room_types": None} == lodging | {"room_types": None}


INVALID_ROOM_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("capacity 0", {"name": "Room", "capacity": 0, "total_rooms": 1}),
    ("rooms 0", {"name": "Room", "capacity": 2, "total_rooms": 0}),
    ("capacity 101", {"name": "Room", "capacity": 101, "total_rooms": 1}),
    ("empty name", {"name": "", "capacity": 2, "total_rooms": 1}),
    ("no name", {"capacity": 2, "total_rooms": 1}),
    (
        "lodging_id",
        {"name": "Room", "capacity": 2, "total_rooms": 1, "lodging_id": str(uuid.UUID(int=3))},
    ),
]


async def test_invalid_room_type_body_is_422(app_client: httpx.AsyncClient, host: Actor) -> None:
    lodging = await create_lodging(app_client, host)
    wrong = []
    for name, body in INVALID_ROOM_TYPES:
        response = await app_client.post(
            f"{API}/host/lodgings/{lodging['id']}/room-types", json=body, headers=host.headers
        )
        if (response.status_code, response.json().get("code")) != (422, "validation_error"):
            wrong.append((name, response.status_code, response.text[:200]))
    assert wrong == []
    detail = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert detail.json()["room_types"] == []

    room_type = await create_room_type(app_client, host, lodging["id"])
    for patch in ({"capacity": 0}, {"total_rooms": -1}, {"lodging_id": str(uuid.UUID(int=3))}):
        response = await app_client.patch(
            f"{API}/host/room-types/{room_type['id']}", json=patch, headers=host.headers
        )
        assert_problem(response, 422, "validation_error")


async def test_create_lodging_with_idempotency_key_runs_once(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    headers = {**host.headers, "Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = await app_client.post(f"{API}/host/lodgings", json=lodging_payload(), headers=headers)
    again = await app_client.post(f"{API}/host/lodgings", json=lodging_payload(), headers=headers)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    listed = await app_client.get(f"{API}/host/lodgings", headers=host.headers)
    assert listed.json()["total"] == 1


async def test_deleted_room_type_leaves_detail_and_calendars(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    kept = await create_room_type(app_client, host, lodging["id"], name="Kept")
    dropped = await create_room_type(app_client, host, lodging["id"], name="Dropped")
    for room_type in (kept, dropped):
        await open_calendar(app_client, host, room_type["id"], day(1), day(3))
    response = await app_client.delete(
        f"{API}/host/room-types/{dropped['id']}", headers=host.headers
    )
    assert response.status_code == 204

    detail = await app_client.get(f"{API}/lodgings/{lodging['id']}")
    assert [rt["id"] for rt in detail.json()["room_types"]] == [kept["id"]]
    mine = await app_client.get(f"{API}/host/lodgings/{lodging['id']}", headers=host.headers)
    assert [rt["id"] for rt in mine.json()["room_types"]] == [kept["id"]]
    public = await app_client.get(
        f"{API}/lodgings/{lodging['id']}/calendar", params={"month": f"{day(1):%Y-%m}"}
    )
    assert [rt["room_type_id"] for rt in public.json()["room_types"]] == [kept["id"]]
    host_calendar = await app_client.get(
        f"{API}/host/room-types/{dropped['id']}/calendar",
        params={"month": f"{day(1):%Y-%m}"},
        headers=host.headers,
    )
    assert_problem(host_calendar, 404, "room_type_not_found")
