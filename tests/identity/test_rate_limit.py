"""Log-in rate limits: per account (whatever the spelling of the email), and per IP."""

from __future__ import annotations

import httpx

from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.identity.helpers import (
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
