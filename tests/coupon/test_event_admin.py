"""Admin APIs of the coupon context: templates and events, their validation, roles, and what an
edit of a live event does to the admission state in Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from haot.coupon.schemas import EventUpdate
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.settings import Settings
from tests.coupon.conftest import (
    Api,
    claim,
    drive,
    http_drop,
    issuance_of,
    open_drop,
    problem,
    redis_view,
    running,
    serve,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres"]),
]


def template(**changes: Any) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "name": "Spring",
        "discount_type": "PERCENT",
        "discount_value": 10,
        "max_discount": 20_000,
        "min_order_amount": 0,
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_to": (now + timedelta(days=30)).isoformat(),
    }
    body.update(changes)
    return body


@pytest.fixture
async def api(settings: Settings) -> Any:
    async with serve(settings) as served:
        yield served


async def test_template_validation(api: Api) -> None:
    url = "/api/v1/admin/coupons"
    now = utcnow()
    refused = [
        template(discount_value=101),  # PERCENT over 100
        template(valid_to=(now - timedelta(days=2)).isoformat()),  # valid_to <= valid_from
        template(valid_to=template()["valid_from"]),
        template(discount_type="FIXED", discount_value=5000, max_discount=1000),
        template(discount_value=0),
        template(min_order_amount=-1),
        template(discount_type="BOGUS"),
        template(valid_from="2026-01-01T00:00:00"),  # no offset
        {**template(), "issued": 5},  # no mass assignment
    ]
    for body in refused:
        answer = await api.http.post(url, headers=api.admin, json=body)
        assert problem(answer) == (422, "validation_error"), body

    created = await api.http.post(
        url,
        headers=api.admin,
        json=template(discount_type="FIXED", discount_value=5000, max_discount=None),
    )
    assert created.status_code == 201, created.text
    coupon = created.json()
    assert (coupon["discount_type"], coupon["max_discount"], coupon["active"]) == (
        "FIXED",
        None,
        True,
    )
    patch = f"{url}/{coupon['id']}"
    earlier = (now - timedelta(days=3)).isoformat()
    assert problem(await api.http.patch(patch, headers=api.admin, json={"valid_to": earlier})) == (
        422,
        "validation_error",
    )
    changed = await api.http.patch(
        patch, headers=api.admin, json={"name": "Summer", "active": False}
    )
    assert changed.status_code == 200
    assert changed.json()["name"] == "Summer"
    assert changed.json()["active"] is False
    missing = await api.http.patch(f"{url}/{uuid.uuid4()}", headers=api.admin, json={"name": "x"})
    assert problem(missing) == (404, "coupon_not_found")
    listed = await api.http.get(url, headers=api.admin, params={"q": "summ"})
    assert [c["id"] for c in listed.json()["items"]] == [coupon["id"]]


async def test_event_validation_and_locks(api: Api) -> None:
    coupon = (
        await api.http.post("/api/v1/admin/coupons", headers=api.admin, json=template())
    ).json()
    url = "/api/v1/admin/coupon-events"
    now = utcnow()

    def event(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "coupon_id": coupon["id"],
            "starts_at": (now + timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "quantity": 10,
        }
        body.update(changes)
        return body

    for body in [
        event(ends_at=(now + timedelta(hours=1)).isoformat()),  # ends_at == starts_at
        event(ends_at=(now + timedelta(minutes=30)).isoformat()),
        event(quantity=0),
        event(quantity=-5),
        event(
            starts_at=(now - timedelta(hours=3)).isoformat(),
            ends_at=(now - timedelta(hours=2)).isoformat(),
        ),
    ]:
        assert problem(await api.http.post(url, headers=api.admin, json=body)) == (
            422,
            "validation_error",
        ), body
    unknown = await api.http.post(url, headers=api.admin, json=event(coupon_id=str(uuid.uuid4())))
    assert problem(unknown) == (404, "coupon_not_found")

    upcoming = (await api.http.post(url, headers=api.admin, json=event())).json()
    assert (upcoming["status"], upcoming["remaining"]) == ("SCHEDULED", 10)
    # Before it starts, the quantity may change (and Redis follows).
    changed = await api.http.patch(
        f"{url}/{upcoming['id']}", headers=api.admin, json={"quantity": 25}
    )
    assert changed.status_code == 200
    assert changed.json()["quantity"] == 25
    assert (await redis_view(api.platform, uuid.UUID(upcoming["id"]))).remaining == 25
    backwards = {"ends_at": (now + timedelta(minutes=10)).isoformat()}
    assert problem(
        await api.http.patch(f"{url}/{upcoming['id']}", headers=api.admin, json=backwards)
    ) == (
        422,
        "validation_error",
    )
    reopen = await api.http.patch(
        f"{url}/{upcoming['id']}", headers=api.admin, json={"status": "OPEN"}
    )
    assert problem(reopen) == (422, "validation_error")

    started = await http_drop(api, quantity=10)
    for body in [{"quantity": 20}, {"starts_at": (now + timedelta(minutes=5)).isoformat()}]:
        locked = await api.http.patch(f"{url}/{started}", headers=api.admin, json=body)
        assert problem(locked) == (409, "event_started"), body
    longer = {"ends_at": (now + timedelta(hours=5)).isoformat(), "name": "Longer"}
    extended = await api.http.patch(f"{url}/{started}", headers=api.admin, json=longer)
    assert extended.status_code == 200
    assert extended.json()["name"] == "Longer"
    gone = await api.http.patch(f"{url}/{uuid.uuid4()}", headers=api.admin, json={"name": "x"})
    assert problem(gone) == (404, "event_not_found")
    assert problem(
        await api.http.patch(f"{url}/not-an-id", headers=api.admin, json={"name": "x"})
    ) == (
        404,
        "event_not_found",
    )

    every = await api.http.get(url, headers=api.admin)
    assert {e["id"] for e in every.json()["items"]} == {upcoming["id"], started}
    live = await api.http.get("/api/v1/coupon-events")
    assert {e["id"] for e in live.json()["items"]} == {upcoming["id"], started}


async def test_admin_routes_refuse_users_hosts_and_anonymous(api: Api) -> None:
    coupon = (
        await api.http.post("/api/v1/admin/coupons", headers=api.admin, json=template())
    ).json()
    event_id = await http_drop(api, quantity=5)
    calls = [
        ("POST", "/api/v1/admin/coupons", template()),
        ("GET", "/api/v1/admin/coupons", None),
        ("GET", f"/api/v1/admin/coupons/{coupon['id']}", None),
        ("PATCH", f"/api/v1/admin/coupons/{coupon['id']}", {"name": "x"}),
        ("POST", f"/api/v1/admin/coupons/{coupon['id']}/issue", {"user_ids": [str(uuid.uuid4())]}),
        ("POST", "/api/v1/admin/coupon-events", {"coupon_id": coupon["id"]}),
        ("GET", "/api/v1/admin/coupon-events", None),
        ("PATCH", f"/api/v1/admin/coupon-events/{event_id}", {"status": "CLOSED"}),
    ]
    for method, url, body in calls:
        for role in (Role.USER, Role.HOST):
            answer = await api.http.request(method, url, headers=api.auth(role), json=body)
            assert problem(answer) == (403, "forbidden"), (method, url, role)
        assert (await api.http.request(method, url, json=body)).status_code == 401, (method, url)
    # Nothing changed.
    assert (await api.http.get(f"/api/v1/coupon-events/{event_id}")).json()["status"] == "OPEN"


async def test_an_admin_reads_one_coupon(api: Api) -> None:
    created = await api.http.post("/api/v1/admin/coupons", headers=api.admin, json=template())
    assert created.status_code == 201, created.text
    coupon = created.json()
    read = await api.http.get(f"/api/v1/admin/coupons/{coupon['id']}", headers=api.admin)
    assert read.status_code == 200, read.text
    assert read.json() == coupon
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        answer = await api.http.get(f"/api/v1/admin/coupons/{missing}", headers=api.admin)
        assert problem(answer) == (404, "coupon_not_found"), missing


async def test_direct_issue_to_users(api: Api) -> None:
    coupon = (
        await api.http.post("/api/v1/admin/coupons", headers=api.admin, json=template())
    ).json()
    guest = uuid.uuid4()
    issued = await api.http.post(
        f"/api/v1/admin/coupons/{coupon['id']}/issue",
        headers=api.admin,
        json={"user_ids": [str(guest), str(guest)]},
    )
    assert issued.status_code == 201
    assert len(issued.json()["issued"]) == 1
    mine = await api.http.get("/api/v1/coupons", headers=api.auth(Role.USER, guest))
    assert [c["status"] for c in mine.json()["items"]] == ["ISSUED"]
    assert mine.json()["items"][0]["coupon"]["id"] == coupon["id"]
    nobody = await api.http.get("/api/v1/coupons", headers=api.auth(Role.USER))
    assert nobody.json()["total"] == 0
    none = await api.http.post(
        f"/api/v1/admin/coupons/{coupon['id']}/issue", headers=api.admin, json={"user_ids": []}
    )
    assert problem(none) == (422, "validation_error")


async def test_editing_a_live_event_keeps_the_claims_redis_admitted(settings: Settings) -> None:
    """Renaming or extending an open event must not reset Redis to the database's view while
    admitted claims are still on their way to the database."""
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=3)
        issuance = issuance_of(platform)
        first = [uuid.uuid4() for _ in range(3)]
        assert {a.status for a in await drive(issuance, event_id, first)} == {202}

        await platform.services["coupon"].update_event(
            event_id, EventUpdate(name="Renamed", ends_at=utcnow() + timedelta(hours=3))
        )

        late = [await claim(issuance, event_id, user) for user in (uuid.uuid4(), first[0])]
        assert [a.code for a in late] == ["coupon_sold_out", "coupon_already_claimed"]
        cache = await redis_view(platform, event_id)
        assert (cache.remaining, cache.users, cache.backlog) == (0, 3, 3)
