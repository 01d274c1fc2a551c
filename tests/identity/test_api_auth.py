"""Sign up, log in, refresh and log out over HTTP, on both database backends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from haot.platform.auth import Role
from tests.identity.helpers import (
    API,
    PASSWORD,
    assert_problem,
    count_users,
    log_in,
    platform_of,
    problem_mismatch,
    register,
    sign_up,
    unique_email,
)

REFRESH = f"{API}/auth/refresh"
LOGOUT = f"{API}/auth/logout"
ME = f"{API}/users/me"


# --- sign up -----------------------------------------------------------------------------------


async def test_sign_up_creates_a_user(app_client: httpx.AsyncClient) -> None:
    response = await sign_up(
        app_client,
        email="  Kim.Minji@Example.com ",
        name="Kim Minji",
        phone="010-1234-5678",
        birth_date="1995-03-14",
        gender="FEMALE",
    )

    assert response.status_code == 201, response.text
    user = response.json()
    assert uuid.UUID(user["id"])
    assert user["email"] == "kim.minji@example.com"
    assert (user["role"], user["active"]) == ("USER", True)
    assert (user["name"], user["phone"], user["birth_date"], user["gender"]) == (
        "Kim Minji",
        "010-1234-5678",
        "1995-03-14",
        "FEMALE",
    )
    assert not {"password", "password_hash"} & user.keys()
    assert PASSWORD not in response.text


async def test_sign_up_with_host_flag_creates_a_host(app_client: httpx.AsyncClient) -> None:
    response = await sign_up(app_client, host=True)
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "HOST"


async def test_email_taken_in_any_case_is_409(app_client: httpx.AsyncClient) -> None:
    assert (await sign_up(app_client, email="park@example.com")).status_code == 201

    response = await sign_up(app_client, email="PARK@Example.COM")

    assert_problem(response, 409, "email_taken")


WEAK_PASSWORDS = {
    "too_short": ("weak1@example.com", "short"),
    "repetitive": ("weak2@example.com", "aaaaaaaaaaaaaa"),
    "contains_email": ("sunshine@example.com", "my-sunshine-2024"),
}


async def test_weak_passwords_are_422_and_create_nothing(app_client: httpx.AsyncClient) -> None:
    failures = {}
    for case, (email, password) in WEAK_PASSWORDS.items():
        response = await sign_up(app_client, email=email, password=password)
        if mismatch := problem_mismatch(response, 422, "weak_password"):
            failures[case] = mismatch
        elif response.json()["detail"] == response.json()["title"]:
            failures[case] = "detail does not say which rule failed"
    assert failures == {}
    assert await count_users(platform_of(app_client)) == 0


MASS_ASSIGNMENTS: list[dict[str, Any]] = [
    {"role": "ADMIN"},
    {"active": False},
    {"role": "ADMIN", "active": True},
    {"is_admin": True},
]


async def test_sign_up_refuses_mass_assignment(app_client: httpx.AsyncClient) -> None:
    failures = {}
    for extra in MASS_ASSIGNMENTS:
        response = await sign_up(app_client, **extra)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(extra)] = mismatch
        elif not response.json()["errors"]:
            failures[str(extra)] = "no field errors"
    assert failures == {}
    platform = platform_of(app_client)
    assert await count_users(platform, role=Role.ADMIN) == 0
    assert await count_users(platform) == 0


UNUSABLE_BODIES = {
    "malformed": b"{not json",
    "empty": b"",
    "array": b"[]",
    "missing_fields": b'{"email": "a@example.com"}',
    "string": b'"just a string"',
}

INVALID_FIELDS: list[dict[str, Any]] = [
    {"email": "not-an-email"},
    {"name": "   "},
    {"gender": "ROBOT"},
    {"birth_date": "1995-02-30"},
    {"birth_date": "2999-01-01"},
    {"phone": "call me maybe"},
    {"password": "x" * 129},
]


async def test_unusable_or_invalid_sign_up_bodies_are_422_problems(
    app_client: httpx.AsyncClient,
) -> None:
    failures = {}
    for case, content in UNUSABLE_BODIES.items():
        response = await app_client.post(
            f"{API}/auth/signup", content=content, headers={"content-type": "application/json"}
        )
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[case] = mismatch
    for changes in INVALID_FIELDS:
        body = {"email": unique_email(), "password": PASSWORD, "name": "Kim", **changes}
        response = await app_client.post(f"{API}/auth/signup", json=body)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(changes)] = mismatch
    assert failures == {}
    assert await count_users(platform_of(app_client)) == 0


# --- log in ------------------------------------------------------------------------------------


async def test_log_in_returns_a_bearer_token_pair(app_client: httpx.AsyncClient) -> None:
    email = unique_email()
    await sign_up(app_client, email=email)

    response = await log_in(app_client, f"  {email.upper()}  ")

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 900)
    me = await app_client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email"] == email


async def test_unknown_user_and_wrong_password_get_identical_answers(
    app_client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await sign_up(app_client, email=email)

    wrong_password = await log_in(app_client, email, "not the password")
    unknown_user = await log_in(app_client, unique_email("ghost"), PASSWORD)

    assert_problem(wrong_password, 401, "invalid_credentials")
    assert unknown_user.status_code == wrong_password.status_code
    assert unknown_user.content == wrong_password.content
    assert unknown_user.headers["www-authenticate"] == wrong_password.headers["www-authenticate"]


async def test_incomplete_log_in_is_422(app_client: httpx.AsyncClient) -> None:
    failures = {}
    for body in [
        {"email": "kim@example.com"},
        {"password": PASSWORD},
        {"email": "k", "password": PASSWORD},
        {"email": "kim@example.com", "password": PASSWORD, "remember_me": True},
    ]:
        response = await app_client.post(f"{API}/auth/login", json=body)
        if mismatch := problem_mismatch(response, 422, "validation_error"):
            failures[str(body)] = mismatch
    assert failures == {}


# --- refresh and log out -----------------------------------------------------------------------


async def test_refresh_rotates_the_pair(app_client: httpx.AsyncClient) -> None:
    account = await register(app_client)

    response = await app_client.post(REFRESH, json={"refresh_token": account.refresh_token})

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert rotated["access_token"] != account.access_token
    me = await app_client.get(ME, headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.json()["id"] == account.id
    again = await app_client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 200, again.text


async def test_reused_refresh_token_revokes_the_whole_family(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)
    first = await app_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    newest = first.json()["refresh_token"]

    reuse = await app_client.post(REFRESH, json={"refresh_token": account.refresh_token})

    assert_problem(reuse, 401, "refresh_token_reused")
    after = await app_client.post(REFRESH, json={"refresh_token": newest})
    assert_problem(after, 401, "invalid_refresh_token")


async def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)

    responses = await asyncio.gather(
        *(
            app_client.post(REFRESH, json={"refresh_token": account.refresh_token})
            for _ in range(10)
        )
    )

    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]
    for loser in responses:
        if loser.status_code != 200:
            body = assert_problem(loser, 401, loser.json()["code"])
            assert body["code"] in {"refresh_token_reused", "invalid_refresh_token"}


async def test_log_out_revokes_the_session(app_client: httpx.AsyncClient) -> None:
    account = await register(app_client)

    response = await app_client.post(LOGOUT, json={"refresh_token": account.refresh_token})

    assert response.status_code == 204
    assert response.content == b""
    after = await app_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert_problem(after, 401, "invalid_refresh_token")


async def test_log_out_of_an_unknown_session_is_quietly_accepted(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.post(LOGOUT, json={"refresh_token": "never-issued-0123456789"})
    assert response.status_code == 204


async def test_unknown_or_malformed_refresh_tokens_are_refused(
    app_client: httpx.AsyncClient,
) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"refresh_token": "never-issued-0123456789"}, 401, "invalid_refresh_token"),
        ({"refresh_token": "x" * 200}, 401, "invalid_refresh_token"),
        ({}, 422, "validation_error"),
        ({"refresh_token": ""}, 422, "validation_error"),
        ({"refresh_token": "x" * 201}, 422, "validation_error"),
        ({"refresh_token": 42}, 422, "validation_error"),
    ]
    failures = {}
    for body, status, code in cases:
        for url in (REFRESH, LOGOUT) if status == 422 else (REFRESH,):
            response = await app_client.post(url, json=body)
            if mismatch := problem_mismatch(response, status, code):
                failures[f"{url} {body}"] = mismatch
    assert failures == {}
