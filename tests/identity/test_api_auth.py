"""Sign up, log in, refresh and log out over HTTP, on both database backends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from haot.platform.auth import Role
from tests.identity.helpers import (
    API,
    PASSWORD,
    assert_problem,
    count_users,
    log_in,
    platform_of,
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


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("weak1@example.com", "short"),
        ("weak2@example.com", "aaaaaaaaaaaaaa"),
        ("sunshine@example.com", "my-sunshine-2024"),
    ],
    ids=["too_short", "repetitive", "contains_email"],
)
async def test_weak_password_is_422_and_creates_nothing(
    app_client: httpx.AsyncClient, email: str, password: str
) -> None:
    response = await sign_up(app_client, email=email, password=password)

    body = assert_problem(response, 422, "weak_password")
    assert body["detail"] != body["title"]  # says which rule failed
    assert await count_users(platform_of(app_client)) == 0


@pytest.mark.parametrize(
    "extra",
    [{"role": "ADMIN"}, {"active": False}, {"role": "ADMIN", "active": True}, {"is_admin": True}],
)
async def test_sign_up_refuses_mass_assignment(
    app_client: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    response = await sign_up(app_client, **extra)

    body = assert_problem(response, 422, "validation_error")
    assert body["errors"]
    platform = platform_of(app_client)
    assert await count_users(platform, role=Role.ADMIN) == 0
    assert await count_users(platform) == 0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'{"email": "a@example.com"}', b'"just a string"'],
    ids=["malformed", "empty", "array", "missing_fields", "string"],
)
async def test_unusable_sign_up_bodies_are_422_problems(
    app_client: httpx.AsyncClient, content: bytes
) -> None:
    response = await app_client.post(
        f"{API}/auth/signup", content=content, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not-an-email"},
        {"name": "   "},
        {"gender": "ROBOT"},
        {"birth_date": "1995-02-30"},
        {"birth_date": "2999-01-01"},
        {"phone": "call me maybe"},
        {"password": "x" * 129},
    ],
)
async def test_invalid_sign_up_fields_are_422(
    app_client: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, "name": "Kim", **changes}
    response = await app_client.post(f"{API}/auth/signup", json=body)
    assert_problem(response, 422, "validation_error")


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


@pytest.mark.parametrize(
    "body",
    [{"email": "kim@example.com"}, {"password": PASSWORD}, {"email": "k", "password": PASSWORD}],
)
async def test_incomplete_log_in_is_422(
    app_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_problem(await app_client.post(f"{API}/auth/login", json=body), 422, "validation_error")


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


@pytest.mark.parametrize(
    "body", [{"refresh_token": "never-issued-0123456789"}, {"refresh_token": "x" * 200}]
)
async def test_unknown_refresh_token_is_401(
    app_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_problem(await app_client.post(REFRESH, json=body), 401, "invalid_refresh_token")


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": "x" * 201}, {"refresh_token": 42}]
)
async def test_malformed_refresh_request_is_422(
    app_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_problem(await app_client.post(REFRESH, json=body), 422, "validation_error")
