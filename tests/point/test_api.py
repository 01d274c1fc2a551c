"""The point HTTP API over the real app: balance, history with filters and pages, admin grants,
deductions and search, roles, and the expiry job's admin route."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from haot.platform.auth import Role
from tests.identity.helpers import assert_problem, bearer, platform_of
from tests.point.conftest import Clock, sqlite_only

API = "/api/v1"
DAY = timedelta(days=1)


def headers(
    client: httpx.AsyncClient, role: Role, user_id: uuid.UUID | None = None
) -> dict[str, str]:
    """A genuine access token for a principal of ``role`` (minted: no sign-up needed)."""
    token = platform_of(client).signer.issue(user_id or uuid.uuid4(), role).token
    return bearer(token)


class Points:
    """Shortcuts for one guest and one admin."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.user_id = uuid.uuid4()
        self.guest = headers(client, Role.USER, self.user_id)
        self.admin = headers(client, Role.ADMIN)

    async def grant(self, amount: int, **extra: Any) -> httpx.Response:
        body = {"user_id": str(self.user_id), "amount": amount, "reason": "event prize", **extra}
        return await self.client.post(f"{API}/admin/points/grants", json=body, headers=self.admin)

    async def deduct(self, amount: int) -> httpx.Response:
        body = {"user_id": str(self.user_id), "amount": amount, "reason": "abuse"}
        return await self.client.post(
            f"{API}/admin/points/deductions", json=body, headers=self.admin
        )

    async def balance(self) -> dict[str, Any]:
        response = await self.client.get(f"{API}/points", headers=self.guest)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def history(self, **params: Any) -> dict[str, Any]:
        response = await self.client.get(f"{API}/points/history", params=params, headers=self.guest)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api(app_client: httpx.AsyncClient) -> Points:
    return Points(app_client)


@sqlite_only
async def test_admin_grants_and_deducts_and_the_guest_sees_the_balance(
    api: Points, clock: Clock
) -> None:
    granted = await api.grant(5_000)
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert (body["user_id"], body["type"], body["amount"]) == (
        str(api.user_id),
        "ADMIN_GRANT",
        5_000,
    )
    soon = (clock.now + 10 * DAY).isoformat()
    assert (await api.grant(100, expires_at=soon)).status_code == 201

    assert await api.balance() == {"balance": 5_100, "held": 0, "expiring_30d": 100}

    deducted = await api.deduct(1_000)
    assert deducted.status_code == 201, deducted.text
    assert (deducted.json()["type"], deducted.json()["amount"]) == ("ADMIN_DEDUCT", -1_000)
    # The soonest-expiring points went first.
    assert await api.balance() == {"balance": 4_100, "held": 0, "expiring_30d": 0}

    refused = await api.deduct(4_101)
    assert_problem(refused, 409, "insufficient_points")
    assert (await api.balance())["balance"] == 4_100


@sqlite_only
async def test_invalid_grants_are_422(api: Points, clock: Clock) -> None:
    for bad in [
        {"amount": 0},
        {"amount": -5},
        {"amount": 10, "reason": "   "},
        {"amount": 10, "expires_at": (clock.now - DAY).isoformat()},
        {"amount": 10, "expires_at": "2030-01-01T00:00:00"},  # no offset
        {"amount": 10, "bonus": True},
    ]:
        body = {"user_id": str(api.user_id), "reason": "x", **bad}
        response = await api.client.post(f"{API}/admin/points/grants", json=body, headers=api.admin)
        assert response.status_code == 422, (bad, response.text)
    assert (await api.balance())["balance"] == 0


async def test_history_filters_by_type_and_time_and_pages(api: Points, clock: Clock) -> None:
    start = clock.now
    await api.grant(1_000)
    clock.advance(DAY)
    await api.deduct(100)
    clock.advance(DAY)
    await api.grant(200)
    clock.advance(DAY)
    await api.deduct(50)

    everything = await api.history()
    assert (everything["page"], everything["size"], everything["total"]) == (1, 20, 4)
    assert [(e["type"], e["amount"]) for e in everything["items"]] == [
        ("ADMIN_DEDUCT", -50),
        ("ADMIN_GRANT", 200),
        ("ADMIN_DEDUCT", -100),
        ("ADMIN_GRANT", 1_000),
    ]  # newest first

    grants = await api.history(type="ADMIN_GRANT")
    assert [e["amount"] for e in grants["items"]] == [200, 1_000]
    assert grants["total"] == 2

    day1, day2 = (start + DAY).isoformat(), (start + 2 * DAY).isoformat()
    window = await api.history(since=day1, until=day2)  # since inclusive, until exclusive
    assert [e["amount"] for e in window["items"]] == [-100]
    assert (await api.history(since=day2))["total"] == 2
    assert (await api.history(until=day1))["total"] == 1
    assert (await api.history(type="ADMIN_DEDUCT", since=day2))["total"] == 1

    second = await api.history(page=2, size=3)
    assert (second["page"], second["size"], second["total"]) == (2, 3, 4)
    assert [e["amount"] for e in second["items"]] == [1_000]


@sqlite_only
async def test_history_parameters_are_validated(api: Points) -> None:
    for params in [{"type": "GIFT"}, {"since": "yesterday"}, {"size": 101}, {"page": 0}]:
        response = await api.client.get(f"{API}/points/history", params=params, headers=api.guest)
        assert response.status_code == 422, (params, response.text)


@sqlite_only
async def test_a_user_sees_only_their_own_points(api: Points) -> None:
    await api.grant(700)
    other = headers(api.client, Role.USER)
    response = await api.client.get(f"{API}/points/history", headers=other)
    assert response.json() == {"items": [], "page": 1, "size": 20, "total": 0}
    balance = await api.client.get(f"{API}/points", headers=other)
    assert balance.json() == {"balance": 0, "held": 0, "expiring_30d": 0}
    # No identity parameter can widen the user's view.
    widened = await api.client.get(
        f"{API}/points/history", params={"user_id": str(api.user_id)}, headers=other
    )
    assert widened.json()["total"] == 0


@sqlite_only
async def test_admin_search_finds_entries_by_user_and_type(api: Points) -> None:
    await api.grant(300)
    await api.deduct(100)
    someone_else = Points(api.client)
    await someone_else.grant(999)

    everyone = await api.client.get(f"{API}/admin/points", headers=api.admin)
    assert everyone.status_code == 200, everyone.text
    assert everyone.json()["total"] == 3
    mine = await api.client.get(
        f"{API}/admin/points", params={"user_id": str(api.user_id)}, headers=api.admin
    )
    assert sorted(e["amount"] for e in mine.json()["items"]) == [-100, 300]
    grants = await api.client.get(
        f"{API}/admin/points", params={"type": "ADMIN_GRANT"}, headers=api.admin
    )
    assert sorted(e["amount"] for e in grants.json()["items"]) == [300, 999]
    balance = await api.client.get(f"{API}/admin/points/users/{api.user_id}", headers=api.admin)
    assert balance.json() == {"balance": 200, "held": 0, "expiring_30d": 0}


@sqlite_only
@pytest.mark.parametrize("role", [Role.USER, Role.HOST])
async def test_admin_routes_refuse_other_roles_and_anonymous_callers(
    api: Points, role: Role
) -> None:
    caller = headers(api.client, role)
    grant = {"user_id": str(api.user_id), "amount": 10, "reason": "self-service"}
    calls = [
        ("POST", f"{API}/admin/points/grants", grant),
        ("POST", f"{API}/admin/points/deductions", grant),
        ("GET", f"{API}/admin/points", None),
        ("GET", f"{API}/admin/points/users/{api.user_id}", None),
        ("POST", f"{API}/admin/jobs/expire-points/run", None),
    ]
    for method, url, body in calls:
        forbidden = await api.client.request(method, url, json=body, headers=caller)
        assert_problem(forbidden, 403, "forbidden")
        anonymous = await api.client.request(method, url, json=body)
        assert anonymous.status_code == 401, anonymous.text
    for url in (f"{API}/points", f"{API}/points/history"):
        assert (await api.client.get(url)).status_code == 401
    assert (await api.balance())["balance"] == 0


@sqlite_only
async def test_the_expiry_job_route_dry_runs_then_expires(api: Points, clock: Clock) -> None:
    await api.grant(400, expires_at=(clock.now + DAY).isoformat())
    await api.grant(50)
    as_of = (clock.now + 2 * DAY).isoformat()
    url = f"{API}/admin/jobs/expire-points/run"

    dry = await api.client.post(url, params={"as_of": as_of, "dry_run": "true"}, headers=api.admin)
    assert dry.status_code == 200, dry.text
    assert dry.json()["result"] == {"lots": 1, "points": 400, "dry_run": 1}
    assert (await api.history(type="EXPIRE"))["total"] == 0

    real = await api.client.post(url, params={"as_of": as_of}, headers=api.admin)
    assert real.json()["result"] == {"lots": 1, "points": 400, "dry_run": 0}
    (expired,) = (await api.history(type="EXPIRE"))["items"]
    assert expired["amount"] == -400
    assert (await api.balance())["balance"] == 50
