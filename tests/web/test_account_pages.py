"""Sign up, log in and log out through the pages (both engines): HttpOnly session cookies, a CSRF
token on every form, the API's refusals shown on the form, and a lapsed access token refreshed."""

from __future__ import annotations

import re
import uuid

import httpx

HTML = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def form_page(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def sign_up(client: httpx.AsyncClient, email: str) -> httpx.Response:
    token = await form_page(client, "/signup")
    return await client.post(
        "/signup",
        data={
            "csrf": token,
            "name": "Kim Guest",
            "email": email,
            "password": "a-long-enough-password",
            "next": "/search?region=Seoul",
        },
        headers=HTML,
    )


async def test_sign_up_signs_in_and_log_out_signs_out(app_client: httpx.AsyncClient) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    answer = await sign_up(app_client, email)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/search?region=Seoul"
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("haot_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session

    home = await app_client.get("/", headers=HTML)
    assert "Kim Guest" in home.text
    assert 'data-testid="logout"' in home.text

    out = await app_client.post("/logout", data={"csrf": csrf_of(home.text)}, headers=HTML)
    assert out.status_code == 303
    after = await app_client.get("/", headers=HTML)
    assert 'data-testid="logout"' not in after.text
    assert 'href="/login' in after.text


async def test_log_in_with_a_wrong_password_says_so_on_the_form(
    app_client: httpx.AsyncClient,
) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    await sign_up(app_client, email)
    app_client.cookies.clear()
    token = await form_page(app_client, "/login")
    wrong = await app_client.post(
        "/login",
        data={"csrf": token, "email": email, "password": "not-the-password"},
        headers=HTML,
    )
    assert wrong.status_code == 401
    assert "비밀번호가 올바르지 않습니다" in wrong.text
    assert f'value="{email}"' in wrong.text  # what was typed stays
    right = await app_client.post(
        "/login",
        data={"csrf": token, "email": email, "password": "a-long-enough-password", "next": "//x"},
        headers=HTML,
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/"  # never another site


async def test_a_form_without_its_csrf_token_is_refused(app_client: httpx.AsyncClient) -> None:
    await form_page(app_client, "/login")  # the browser has its CSRF cookie
    for data in ({}, {"csrf": "forged"}, {"csrf": "eyJhIjoxfQ.bad.signature"}):
        refused = await app_client.post(
            "/login", data=data | {"email": "a@b.co", "password": "x" * 12}, headers=HTML
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
    # A token from another browser (another CSRF cookie) does not fit this one's.
    other = httpx.AsyncClient(transport=app_client._transport, base_url="http://testserver")
    async with other:
        theirs = await form_page(other, "/login")
    refused = await app_client.post(
        "/login", data={"csrf": theirs, "email": "a@b.co", "password": "x" * 12}, headers=HTML
    )
    assert refused.status_code == 403


async def test_sign_up_refusals_are_shown_next_to_their_fields(
    app_client: httpx.AsyncClient,
) -> None:
    token = await form_page(app_client, "/signup")
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    fields = {"csrf": token, "name": "Lee"}
    bad_email = await app_client.post(
        "/signup", data=fields | {"email": "not-an-email", "password": "x" * 12}, headers=HTML
    )
    assert bad_email.status_code == 422
    assert 'id="email-error"' in bad_email.text
    short = await app_client.post(
        "/signup", data=fields | {"email": email, "password": "short"}, headers=HTML
    )
    assert short.status_code == 422
    assert 'id="password-error"' in short.text
    assert f'value="{email}"' in short.text
    await sign_up(app_client, email)
    app_client.cookies.clear()
    taken = await sign_up(app_client, email)
    assert taken.status_code == 409
    assert "이미 있습니다" in taken.text


async def test_a_lapsed_access_token_is_refreshed_by_the_next_page(
    app_client: httpx.AsyncClient,
) -> None:
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    refresh = app_client.cookies.get("haot_refresh")
    assert refresh
    app_client.cookies.delete("haot_session")  # as the browser does once it expires
    page = await app_client.get("/", headers=HTML)
    assert "Kim Guest" in page.text
    renewed = [c for c in page.headers.get_list("set-cookie") if c.startswith("haot_session=")]
    assert renewed, "the page set the new access token"
    assert app_client.cookies.get("haot_refresh") != refresh  # rotated


def test_the_password_fields_ask_the_browser_for_the_policy_length() -> None:
    """The browser's own check (``minlength``) must not let through what the API refuses, nor
    refuse what it accepts: the pages import no context, so this test holds them together."""
    from pathlib import Path

    from haot.identity.domain import MIN_PASSWORD_LENGTH

    templates = Path(__file__).resolve().parents[2] / "src" / "haot" / "web" / "templates"
    for name in ("signup.html", "account.html"):
        found = re.findall(r'"new-password", minlength="(\d+)"', (templates / name).read_text())
        assert found == [str(MIN_PASSWORD_LENGTH)], (name, found)
