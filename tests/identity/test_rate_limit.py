"""Log-in rate limits: per account (whatever the spelling of the email), and per IP."""

from __future__ import annotations

import asyncio

import httpx

from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.identity.helpers import (
    API,
    PASSWORD,
    app_with,
    assert_problem,
    log_in,
    sign_up,
    unique_email,
)


async def test_fourth_log_in_a_minute_for_one_account_is_429(
    database_url: str, settings: Settings
) -> None:
    # ``settings`` is requested for its fresh Redis; the app runs on a tight limit of its own.
    async with app_with(make_settings(database_url, login_rate_per_minute=3)) as client:
        victim, bystander = unique_email("victim"), unique_email("bystander")
        for email in (victim, bystander):
            assert (await sign_up(client, email=email)).status_code == 201
        for _ in range(3):
            assert_problem(
                await log_in(client, victim, "wrong password!"), 401, "invalid_credentials"
            )

        limited = await log_in(client, f" {victim.upper()} ", PASSWORD)

        assert_problem(limited, 429, "rate_limited")
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert "access_token" not in limited.text
        assert (await log_in(client, bystander, PASSWORD)).status_code == 200


async def test_log_ins_from_one_ip_are_limited_across_accounts(
    database_url: str, settings: Settings
) -> None:
    tight = make_settings(database_url, login_ip_rate_per_minute=2)
    async with app_with(tight) as client:
        for _ in range(2):
            assert_problem(await log_in(client, unique_email("ghost")), 401, "invalid_credentials")

        limited = await log_in(client, unique_email("ghost"))

        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


async def test_log_in_limit_is_not_reached_by_normal_use(app_client: httpx.AsyncClient) -> None:
    # The shared fixtures allow 1000 a minute: ten quick log-ins in a row must all succeed there.
    email = unique_email()
    await sign_up(app_client, email=email)
    for _ in range(10):
        assert (await log_in(app_client, email)).status_code == 200


def from_ip(client: httpx.AsyncClient, ip: str) -> httpx.AsyncClient:
    """Another client of the same app, connecting from ``ip``."""
    transport = httpx.ASGITransport(app=client._transport.app, client=(ip, 40000))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_stranger_guessing_never_locks_the_owner_out(
    database_url: str, settings: Settings
) -> None:
    tight = make_settings(database_url, login_rate_per_minute=3, login_failures_before_delay=2)
    async with app_with(tight) as owner:
        victim = unique_email("victim")
        assert (await sign_up(owner, email=victim)).status_code == 201
        async with from_ip(owner, "203.0.113.66") as stranger:
            answers = [
                (await log_in(stranger, victim, "guess-number-one")).status_code for _ in range(5)
            ]
            assert answers[:2] == [401, 401]
            assert set(answers[2:]) == {429}
        assert (await log_in(owner, victim, PASSWORD)).status_code == 200


async def test_failed_log_ins_earn_growing_delays_and_a_success_clears_them(
    database_url: str, settings: Settings
) -> None:
    async with app_with(make_settings(database_url, login_failures_before_delay=2)) as client:
        email = unique_email()
        assert (await sign_up(client, email=email)).status_code == 201
        for _ in range(2):
            assert_problem(
                await log_in(client, email, "wrong password!"), 401, "invalid_credentials"
            )
        first = await log_in(client, email, PASSWORD)  # even the right password waits
        assert_problem(first, 429, "rate_limited")
        assert int(first.headers["retry-after"]) == 1
        await asyncio.sleep(1.1)
        assert_problem(await log_in(client, email, "wrong password!"), 401, "invalid_credentials")
        second = await log_in(client, email, "wrong password!")
        assert_problem(second, 429, "rate_limited")
        assert int(second.headers["retry-after"]) == 2  # doubled
        await asyncio.sleep(2.1)
        assert (await log_in(client, email, PASSWORD)).status_code == 200
        # The success forgot the failures: the next wrong one is an ordinary 401.
        assert_problem(await log_in(client, email, "wrong password!"), 401, "invalid_credentials")


async def test_password_changes_are_rate_limited_and_failures_delayed(
    database_url: str, settings: Settings
) -> None:
    tight = make_settings(
        database_url, password_change_rate_per_minute=4, login_failures_before_delay=2
    )
    async with app_with(tight) as client:
        email = unique_email()
        await sign_up(client, email=email)
        token = (await log_in(client, email)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def change(current: str) -> httpx.Response:
            return await client.put(
                f"{API}/users/me/password",
                json={"current_password": current, "new_password": "Another-Pass-5678"},
                headers=headers,
            )

        assert [(await change("not my password")).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        await asyncio.sleep(1.1)
        assert (await change("still not it")).status_code == 401
        limited = await change(PASSWORD)
        assert_problem(limited, 429, "rate_limited")
