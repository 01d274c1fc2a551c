"""Admin user management over HTTP: list, search, role change, deactivation, and who may."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.identity.helpers import (
    API,
    Account,
    assert_problem,
    log_in,
    minted_admin_headers,
    problem_mismatch,
    register,
    register_admin,
    sign_up,
)

USERS = f"{API}/admin/users"
ME = f"{API}/users/me"


async def make_users(client: httpx.AsyncClient, specs: list[tuple[str, str, bool]]) -> list[str]:
    """Sign up (email, name, host) accounts in order; their ids, oldest first."""
    ids = []
    for email, name, host in specs:
        response = await sign_up(client, email=email, name=name, host=host)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def listed(client: httpx.AsyncClient, admin: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(USERS, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_admin_lists_users_as_a_page(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    kim, lee = await make_users(
        app_client, [("kim@example.com", "Kim", False), ("lee@example.com", "Lee", True)]
    )

    page = await listed(app_client, admin)

    assert set(page) == {"items", "page", "size", "total"}
    assert (page["page"], page["size"], page["total"]) == (1, 20, 3)
    assert [user["id"] for user in page["items"]] == [lee, kim, admin.id]
    assert {"id", "email", "name", "role", "active", "created_at"} <= page["items"][0].keys()
    assert "password_hash" not in page["items"][0]


async def test_admin_list_paginates_newest_first(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    ids = await make_users(
        app_client, [(f"p{i}@example.com", f"Person {i}", False) for i in range(4)]
    )
    newest_first = [*reversed(ids), admin.id]

    pages = [await listed(app_client, admin, page=n, size=2) for n in (1, 2, 3, 4)]

    assert [[u["id"] for u in p["items"]] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
        [],
    ]
    assert {p["total"] for p in pages} == {5}
    assert [(p["page"], p["size"]) for p in pages] == [(1, 2), (2, 2), (3, 2), (4, 2)]


async def test_admin_search_and_filters(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    kim, lee, park = await make_users(
        app_client,
        [
            ("minji.kim@example.com", "Kim Minji", False),
            ("jiho.lee@example.org", "Lee Jiho", True),
            ("park@example.com", "Park Minjun", False),
        ],
    )
    deactivate = await app_client.patch(
        f"{USERS}/{park}", json={"active": False}, headers=admin.headers
    )
    assert deactivate.status_code == 200

    async def ids(**params: Any) -> list[str]:
        return [user["id"] for user in (await listed(app_client, admin, **params))["items"]]

    assert await ids(q="MINJ") == [park, kim]
    assert await ids(q="example.org") == [lee]
    assert await ids(role="HOST") == [lee]
    assert await ids(role="ADMIN") == [admin.id]
    assert await ids(active="false") == [park]
    assert await ids(active="true", q="minj") == [kim]
    assert await ids(q="nobody-like-this") == []
    assert (await listed(app_client, admin, q="minj"))["total"] == 2


BAD_LIST_PARAMETERS: list[dict[str, Any]] = [
    {"size": 101},
    {"size": 0},
    {"page": 0},
    {"page": "first"},
    {"role": "ROOT"},
    {"active": "maybe"},
    {"q": "x" * 101},
]


async def test_bad_list_parameters_are_422(app_client: httpx.AsyncClient) -> None:
    admin = minted_admin_headers(app_client)
    failures = {}
    for params in BAD_LIST_PARAMETERS:
        response = await app_client.get(USERS, params=params, headers=admin)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(params)] = mismatch
    assert failures == {}
    assert (await app_client.get(USERS, params={"size": 100}, headers=admin)).status_code == 200


async def test_admin_reads_one_user(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    user = await register(app_client)

    response = await app_client.get(f"{USERS}/{user.id}", headers=admin.headers)

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["email"]) == (user.id, user.email)


async def test_role_change_revokes_the_users_tokens_at_once(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    user = await register(app_client)

    response = await app_client.patch(
        f"{USERS}/{user.id}", json={"role": "HOST"}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "HOST"
    assert_problem(await app_client.get(ME, headers=user.headers), 401, "invalid_token")
    refresh = await app_client.post(
        f"{API}/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert_problem(refresh, 401, "invalid_refresh_token")
    again = await log_in(app_client, user.email)
    me = await app_client.get(
        ME, headers={"Authorization": f"Bearer {again.json()['access_token']}"}
    )
    assert me.json()["role"] == "HOST"
    assert (await app_client.get(ME, headers=admin.headers)).status_code == 200


async def test_promoted_admin_can_use_admin_routes_after_logging_in_again(
    app_client: httpx.AsyncClient,
) -> None:
    admin = await register_admin(app_client)
    user = await register(app_client)
    assert_problem(await app_client.get(USERS, headers=user.headers), 403, "forbidden")

    await app_client.patch(f"{USERS}/{user.id}", json={"role": "ADMIN"}, headers=admin.headers)

    again = (await log_in(app_client, user.email)).json()
    response = await app_client.get(
        USERS, headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert response.status_code == 200


async def test_deactivation_revokes_tokens_and_blocks_log_in(app_client: httpx.AsyncClient) -> None:
    admin = await register_admin(app_client)
    user = await register(app_client)

    response = await app_client.patch(
        f"{USERS}/{user.id}", json={"active": False}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert_problem(await app_client.get(ME, headers=user.headers), 401, "invalid_token")
    refresh = await app_client.post(
        f"{API}/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert_problem(refresh, 401, "invalid_refresh_token")
    blocked = await log_in(app_client, user.email)
    assert_problem(blocked, 401, "invalid_credentials")

    await app_client.patch(f"{USERS}/{user.id}", json={"active": True}, headers=admin.headers)
    assert (await log_in(app_client, user.email)).status_code == 200


async def test_admin_update_accepts_only_role_and_active(app_client: httpx.AsyncClient) -> None:
    user = await register(app_client)
    admin = minted_admin_headers(app_client)
    failures = {}
    for body in [{"role": "ROOT"}, {"active": "sometimes"}, {"email": "x@example.com"}]:
        response = await app_client.patch(f"{USERS}/{user.id}", json=body, headers=admin)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(body)] = mismatch
    assert failures == {}
    assert (await app_client.get(ME, headers=user.headers)).json()["role"] == "USER"


@pytest.mark.parametrize("host", [False, True], ids=["USER", "HOST"])
async def test_users_and_hosts_get_403_on_admin_routes(
    app_client: httpx.AsyncClient, host: bool
) -> None:
    caller = await register(app_client, host=host)

    responses = [
        await app_client.get(USERS, headers=caller.headers),
        await app_client.get(f"{USERS}/{caller.id}", headers=caller.headers),
        await app_client.patch(
            f"{USERS}/{caller.id}", json={"role": "ADMIN"}, headers=caller.headers
        ),
    ]

    for response in responses:
        assert_problem(response, 403, "forbidden")
    me = (await app_client.get(ME, headers=caller.headers)).json()
    assert me["role"] == ("HOST" if host else "USER")


async def test_admin_routes_without_a_token_are_401(app_client: httpx.AsyncClient) -> None:
    some_id = str(uuid.uuid4())
    for response in [
        await app_client.get(USERS),
        await app_client.get(f"{USERS}/{some_id}"),
        await app_client.patch(f"{USERS}/{some_id}", json={"role": "ADMIN"}),
    ]:
        assert_problem(response, 401, "unauthorized")


async def test_unknown_or_malformed_user_id_is_404(app_client: httpx.AsyncClient) -> None:
    admin = minted_admin_headers(app_client)
    await register(app_client)  # somebody exists, just not the one asked for
    failures = {}
    for user_id in [
        str(uuid.uuid4()),
        "not-a-uuid",
        "1",
        "00000000-0000-0000-0000-000000000000",
        "%20",
    ]:
        read = await app_client.get(f"{USERS}/{user_id}", headers=admin)
        update = await app_client.patch(f"{USERS}/{user_id}", json={"role": "HOST"}, headers=admin)
        for verb, response in (("GET", read), ("PATCH", update)):
            if mismatch := problem_mismatch(response, 404, "user_not_found"):
                failures[f"{verb} {user_id}"] = mismatch
    assert failures == {}


async def test_a_revocation_that_failed_after_the_commit_lands_through_the_outbox(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis refusing the stamp right after the commit used to leave the deactivated user's
    access token valid until it expired (and the admin an error for a change that was made)."""
    admin = await register_admin(app_client)
    user = await register(app_client)
    revocations = app_client.app.state.platform.revocations  # type: ignore[attr-defined]
    stamp = revocations.revoke_tokens_issued_before
    failures = 0

    async def flaky_once(user_id: uuid.UUID, when: Any) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise ConnectionError("Redis is restarting")
        await stamp(user_id, when)

    monkeypatch.setattr(revocations, "revoke_tokens_issued_before", flaky_once)
    response = await app_client.patch(
        f"{USERS}/{user.id}", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert failures == 1
    for _ in range(200):  # the relay delivers the event in the background
        if (await app_client.get(ME, headers=user.headers)).status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert_problem(await app_client.get(ME, headers=user.headers), 401, "invalid_token")


async def test_repeating_a_deactivation_revokes_again(app_client: httpx.AsyncClient) -> None:
    """An admin deactivating an account that is already inactive revokes its tokens again (a
    new revocation event, the stamp moved forward): the way to be sure, whatever happened."""
    admin = await register_admin(app_client)
    user = await register(app_client)
    platform = app_client.app.state.platform  # type: ignore[attr-defined]
    key = platform.revocations.key(uuid.UUID(user.id))
    await app_client.patch(f"{USERS}/{user.id}", json={"active": False}, headers=admin.headers)
    first = float(await platform.redis.get(key))

    repeated = await app_client.patch(
        f"{USERS}/{user.id}", json={"active": False}, headers=admin.headers
    )
    assert repeated.status_code == 200, repeated.text
    assert float(await platform.redis.get(key)) > first
    assert_problem(await app_client.get(ME, headers=user.headers), 401, "invalid_token")
