"""The caller's own account over HTTP: read, update, change password."""

from __future__ import annotations

from typing import Any

import httpx

from tests.identity.helpers import (
    API,
    NEW_PASSWORD,
    PASSWORD,
    assert_problem,
    bearer,
    log_in,
    problem_mismatch,
    register,
)

ME = f"{API}/users/me"
PASSWORD_URL = f"{API}/users/me/password"


async def test_me_returns_the_callers_own_profile(app_client: httpx.AsyncClient) -> None:
    kim = await register(app_client)
    await register(app_client)

    response = await app_client.get(ME, headers=kim.headers)

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["email"]) == (kim.id, kim.email)


async def test_profile_update_changes_the_given_fields(app_client: httpx.AsyncClient) -> None:
    account = await register(app_client)
    changes = {
        "name": "Kim Minji",
        "phone": "+82 10 9876 5432",
        "birth_date": "1990-12-31",
        "gender": "OTHER",
    }

    response = await app_client.patch(ME, json=changes, headers=account.headers)

    assert response.status_code == 200, response.text
    stored = (await app_client.get(ME, headers=account.headers)).json()
    assert {key: stored[key] for key in changes} == changes
    assert (stored["email"], stored["role"]) == (account.email, "USER")


async def test_profile_update_leaves_absent_fields_and_clears_null_ones(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)
    await app_client.patch(
        ME, json={"phone": "010-1111-2222", "gender": "MALE"}, headers=account.headers
    )

    response = await app_client.patch(ME, json={"phone": None}, headers=account.headers)

    assert response.status_code == 200, response.text
    assert (response.json()["phone"], response.json()["gender"]) == (None, "MALE")


FORBIDDEN_PROFILE_CHANGES: list[dict[str, Any]] = [
    {"email": "someone.else@example.com"},
    {"role": "ADMIN"},
    {"active": False},
    {"id": "0192f0c4-0000-7000-8000-000000000000"},
    {"password": "a brand new password"},
    {"name": None},
    {"name": ""},
    {"birth_date": "2999-01-01"},
    {"gender": "ROBOT"},
]


async def test_profile_update_cannot_touch_identity_or_blank_the_name(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)
    before = (await app_client.get(ME, headers=account.headers)).json()

    failures = {}
    for body in FORBIDDEN_PROFILE_CHANGES:
        response = await app_client.patch(ME, json=body, headers=account.headers)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(body)] = mismatch

    assert failures == {}
    assert (await app_client.get(ME, headers=account.headers)).json() == before


async def test_me_needs_a_token(app_client: httpx.AsyncClient) -> None:
    assert_problem(await app_client.get(ME), 401, "unauthorized")
    assert_problem(await app_client.patch(ME, json={"name": "X"}), 401, "unauthorized")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert_problem(await app_client.put(PASSWORD_URL, json=body), 401, "unauthorized")


async def test_password_change_with_a_wrong_current_password_is_401(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)

    response = await app_client.put(
        PASSWORD_URL,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=account.headers,
    )

    assert_problem(response, 401, "invalid_credentials")
    assert (await app_client.get(ME, headers=account.headers)).status_code == 200
    assert (await log_in(app_client, account.email, PASSWORD)).status_code == 200


async def test_weak_new_password_is_422(app_client: httpx.AsyncClient) -> None:
    account = await register(app_client)

    response = await app_client.put(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": "1212121212"},
        headers=account.headers,
    )

    assert_problem(response, 422, "weak_password")
    assert (await app_client.get(ME, headers=account.headers)).status_code == 200


async def test_password_change_revokes_old_tokens_at_once(app_client: httpx.AsyncClient) -> None:
    account = await register(app_client)
    other_session = (await log_in(app_client, account.email)).json()

    response = await app_client.put(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )

    assert response.status_code == 204, response.text
    for access in (account.access_token, other_session["access_token"]):
        assert_problem(await app_client.get(ME, headers=bearer(access)), 401, "invalid_token")
    for refresh in (account.refresh_token, other_session["refresh_token"]):
        stale = await app_client.post(f"{API}/auth/refresh", json={"refresh_token": refresh})
        assert_problem(stale, 401, "invalid_refresh_token")
    assert_problem(await log_in(app_client, account.email, PASSWORD), 401, "invalid_credentials")
    fresh = await log_in(app_client, account.email, NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.text
    me = await app_client.get(ME, headers=bearer(fresh.json()["access_token"]))
    assert me.status_code == 200, me.text
