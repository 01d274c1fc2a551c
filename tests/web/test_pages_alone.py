"""The pages served alone (``haot serve --context web``, ADR 0018): no context in the process, the
API called over HTTP at ``HAOT_WEB_API_URL`` (here the API served on another loopback port, as the
gateway of a split deployment would), the visitor's address passed on for the API's per-IP
limits."""

from __future__ import annotations

import random
import re
import uuid

import httpx
import pytest

from haot.app import PAGES_ALONE_NEED_API_URL, create_app
from haot.platform.settings import Settings
from tests.support.gateway import InMemoryGateway
from tests.support.server import serving
from tests.web.test_account_pages import HTML, csrf_of, sign_up

pytestmark = pytest.mark.usefixtures("redis_available")


async def test_the_pages_alone_sign_up_and_show_the_account_through_the_api(
    settings: Settings,
) -> None:
    api = create_app(settings, gateway=InMemoryGateway(), pages=False)
    async with serving(api) as api_base:
        pages = create_app(
            settings.model_copy(update={"web_api_url": api_base}), contexts=(), pages=True
        )
        async with serving(pages) as pages_base, httpx.AsyncClient(base_url=pages_base) as client:
            # The pages process serves no API: only the API process answers /api/v1.
            assert (await client.get("/api/v1/lodgings")).status_code == 404
            assert (await client.get(f"{api_base}/", headers=HTML)).status_code == 404

            email = f"alone-{uuid.uuid4().hex[:8]}@example.com"
            answer = await sign_up(client, email)
            assert answer.status_code == 303, answer.text
            account = await client.get("/account", headers=HTML)
            assert account.status_code == 200
            assert email in account.text

            search = await client.get("/search?region=Seoul", headers=HTML)
            assert search.status_code == 200
            assert 'name="region"' in search.text

            # A refusal of the API comes back through HTTP as a refusal on the form.
            client.cookies.clear()
            login = await client.get("/login", headers=HTML)
            wrong = await client.post(
                "/login",
                data={"csrf": csrf_of(login.text), "email": email, "password": "wrong-password"},
                headers=HTML,
            )
            assert wrong.status_code == 401
            assert f'value="{email}"' in wrong.text


async def test_the_api_limits_the_visitor_not_the_pages_process(settings: Settings) -> None:
    """Logins are limited per client address: through the pages alone, one visitor's failures
    must not lock every other visitor out (the API sees the forwarded visitor address)."""
    api = create_app(
        settings.model_copy(update={"login_ip_rate_per_minute": 3}),
        gateway=InMemoryGateway(),
        pages=False,
    )
    async with serving(api) as api_base:
        pages = create_app(
            settings.model_copy(update={"web_api_url": api_base}), contexts=(), pages=True
        )
        async with serving(pages) as pages_base:

            async def try_login(visitor: str) -> int:
                headers = {**HTML, "X-Forwarded-For": visitor}
                async with httpx.AsyncClient(base_url=pages_base, headers=headers) as client:
                    page = await client.get("/login")
                    answer = await client.post(
                        "/login",
                        data={
                            "csrf": csrf_of(page.text),
                            "email": "nobody@example.com",
                            "password": "wrong-password",
                        },
                    )
                    return answer.status_code

            one, other = (f"203.0.113.{n}" for n in random.sample(range(1, 255), 2))
            first = [await try_login(one) for _ in range(5)]
            assert first[:3] == [401, 401, 401]
            assert 429 in first[3:], first
            assert await try_login(other) == 401, "another visitor was limited too"


def test_the_pages_alone_need_the_api_address(settings: Settings) -> None:
    with pytest.raises(ValueError, match=re.escape(PAGES_ALONE_NEED_API_URL)):
        create_app(settings.model_copy(update={"web_api_url": ""}), contexts=(), pages=True)


def test_the_pages_alone_document_the_whole_api(settings: Settings) -> None:
    """At the gateway, /openapi.json and /docs are the pages process's: they must describe the
    whole API as the all-in-one app does, not the pages' own (empty) API."""
    whole = create_app(settings, gateway=InMemoryGateway()).openapi()
    pages = create_app(
        settings.model_copy(update={"web_api_url": "http://127.0.0.1:9"}), contexts=(), pages=True
    ).openapi()
    assert "/api/v1/reservations" in pages["paths"]
    assert pages["paths"] == whole["paths"]
    assert pages["components"] == whole["components"]
