"""The API's refusals on the pages in the visitor's language (both engines): Korean by default,
English by the language switch, beside the field they are about; a domain refusal by its code; and
a validator's message the pages do not know shown as the API words it."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from haot.identity.domain import MIN_PASSWORD_LENGTH
from haot.web import refusals
from tests.lodging.factories import (
    create_listing,
    create_lodging,
    day,
    make_host,
    make_user,
    put_calendar,
)
from tests.web.test_account_pages import HTML, csrf_of, form_page, sign_up
from tests.web.test_admin_pages import admin_on_the_pages, field_error
from tests.web.test_host_pages import log_in


async def in_english(client: httpx.AsyncClient) -> None:
    """The language switch, as a visitor uses it (the ``haot_lang`` cookie)."""
    switched = await client.get("/lang/en", params={"next": "/"})
    assert switched.status_code == 303


def alert(html: str) -> str:
    """The form's own error (a refusal without a field)."""
    found = re.search(r'<p class="error" role="alert">([^<]+)</p>', html)
    assert found, "no form error"
    return found.group(1).strip()


async def post_sign_up(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    token = await form_page(client, "/signup")
    data = {"csrf": token, "name": "Lee", "email": f"g-{uuid.uuid4().hex[:8]}@example.com"}
    return await client.post("/signup", data=data | fields, headers=HTML)


async def test_sign_up_refusals_are_in_the_pages_language_beside_their_fields(
    app_client: httpx.AsyncClient,
) -> None:
    cases = [
        ({"password": "short"}, "password"),  # the password policy (weak_password)
        ({"name": "", "password": "x" * 12}, "name"),  # required
        ({"email": "not-an-email", "password": "x" * 12}, "email"),
    ]
    korean = [
        f"{MIN_PASSWORD_LENGTH}자 이상 입력해 주세요.",
        "이 항목을 입력해 주세요.",
        "올바른 이메일 주소를 입력해 주세요.",
    ]
    english = [
        f"Use at least {MIN_PASSWORD_LENGTH} characters.",
        "Fill in this field.",
        "Enter a valid email address.",
    ]
    for wording in (korean, english):
        if wording is english:
            await in_english(app_client)
        for (fields, field), expected in zip(cases, wording, strict=True):
            refused = await post_sign_up(app_client, **fields)
            assert refused.status_code == 422, refused.text
            assert field_error(refused.text, field) == expected, fields


async def test_a_missing_or_out_of_range_number_is_worded_with_its_limit(
    app_client: httpx.AsyncClient,
) -> None:
    guest = await make_user(app_client)
    await admin_on_the_pages(app_client)
    mine = f"/admin/points?user_id={guest.id}"

    async def grant(amount: str) -> str:
        token = csrf_of((await app_client.get(mine, headers=HTML)).text)
        data = {"csrf": token, "user_id": guest.id, "amount": amount, "reason": "Sorry"}
        answer = await app_client.post("/admin/points/grants", data=data, headers=HTML)
        assert answer.status_code == 422, answer.text
        return field_error(answer.text, "grant-amount")

    assert await grant("") == "이 항목을 입력해 주세요."  # missing: the page leaves it out
    assert await grant("0") == "1 이상을 입력해 주세요."
    assert await grant("100000001") == "100,000,000 이하를 입력해 주세요."
    assert await grant("many") == "정수를 입력해 주세요."
    await in_english(app_client)
    assert await grant("") == "Fill in this field."
    assert await grant("0") == "Enter 1 or more."
    assert await grant("100000001") == "Enter 100,000,000 or less."


async def test_a_hosts_room_count_out_of_range_is_worded_with_its_limit(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    lodging = await create_lodging(app_client, host)
    await log_in(app_client, host)
    path = f"/host/lodgings/{lodging['id']}"

    async def add_room_type(total_rooms: str) -> str:
        token = csrf_of((await app_client.get(path, headers=HTML)).text)
        data = {"csrf": token, "name": "Twin", "capacity": "2", "total_rooms": total_rooms}
        answer = await app_client.post(f"{path}/room-types", data=data, headers=HTML)
        assert answer.status_code == 422, answer.text
        return field_error(answer.text, "new-room-total_rooms")

    assert await add_room_type("0") == "1 이상을 입력해 주세요."
    assert await add_room_type("10001") == "10,000 이하를 입력해 주세요."
    await in_english(app_client)
    assert await add_room_type("0") == "Enter 1 or more."


async def change_details(client: httpx.AsyncClient, birth_date: str) -> httpx.Response:
    token = csrf_of((await client.get("/account", headers=HTML)).text)
    data = {"csrf": token, "name": "Kim Guest", "birth_date": birth_date}
    answer = await client.post("/account", data=data, headers=HTML)
    assert answer.status_code == 422, answer.text
    return answer


async def test_a_bad_date_is_worded_in_the_pages_language(app_client: httpx.AsyncClient) -> None:
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    future = day(30).isoformat()
    korean = {
        "2026-13-45": "날짜를 입력해 주세요 (YYYY-MM-DD).",
        "1899-12-31": "1900. 1. 1. 또는 그 이후 날짜를 입력해 주세요.",
        future: "생년월일은 미래의 날짜일 수 없습니다.",  # our own validator's message
    }
    english = {
        "2026-13-45": "Enter a date (YYYY-MM-DD).",
        "1899-12-31": "Enter Jan 1, 1900 or later.",
        future: "The birth date cannot be in the future.",
    }
    for wording in (korean, english):
        if wording is english:
            await in_english(app_client)
        for typed, expected in wording.items():
            refused = await change_details(app_client, typed)
            assert field_error(refused.text, "birth_date") == expected, typed
            assert f'value="{typed}"' in refused.text  # what was typed stays


async def test_an_unknown_validator_message_is_shown_as_the_api_words_it(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validator whose message the pages do not know yet (here: by forgetting them all): its
    message is the API's, in any language, rather than nothing."""
    monkeypatch.setattr(refusals, "KNOWN", [])
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    api_words = "Value error, birth_date cannot be in the future"
    refused = await change_details(app_client, day(30).isoformat())
    assert field_error(refused.text, "birth_date") == api_words
    await in_english(app_client)
    refused = await change_details(app_client, day(30).isoformat())
    assert field_error(refused.text, "birth_date") == api_words


async def test_a_domain_refusal_is_worded_by_its_code(app_client: httpx.AsyncClient) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=90_000)
    closed = await put_calendar(app_client, host, listing.room_type_id, day(3), day(4), closed=True)
    assert closed.status_code == 200, closed.text
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    stay: dict[str, str | int] = {"room_type_id": listing.room_type_id, "guests": 2}
    full = stay | {"check_in": day(2).isoformat(), "check_out": day(5).isoformat()}
    free = stay | {"check_in": day(6).isoformat(), "check_out": day(8).isoformat()}

    sold_out = await app_client.get("/book", params=full, headers=HTML)
    assert sold_out.status_code == 409, sold_out.text
    assert alert(sold_out.text) == "일부 날짜가 매진되었습니다. 다른 날짜를 골라 주세요."
    no_points = await app_client.get("/book", params=free | {"points": 5000}, headers=HTML)
    assert no_points.status_code == 409, no_points.text
    assert alert(no_points.text) == "포인트가 부족합니다."
    one_date = await app_client.get(
        "/search", params={"check_in": day(3).isoformat()}, headers=HTML
    )
    assert one_date.status_code == 422, one_date.text  # invalid_stay, a detail the pages know
    assert alert(one_date.text) == "체크인과 체크아웃 날짜를 모두 입력하거나 모두 비워 두세요."

    await in_english(app_client)
    sold_out = await app_client.get("/book", params=full, headers=HTML)
    assert alert(sold_out.text) == "Some nights of the stay are sold out. Choose other dates."
    no_points = await app_client.get("/book", params=free | {"points": 5000}, headers=HTML)
    assert alert(no_points.text) == "You do not have that many points."
    one_date = await app_client.get(
        "/search", params={"check_in": day(3).isoformat()}, headers=HTML
    )
    assert alert(one_date.text) == "Give both dates, or neither."
