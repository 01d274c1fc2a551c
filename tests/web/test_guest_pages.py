"""Guest pages over HTTP on the real app (both database engines): the paths and data-testid hooks
of SPEC, Korean by default and English by choice, and HTML errors for pages (problem+json for the
API). The pages call the public API in-process (ADR 0017)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from haot.web.api_client import Api
from tests.lodging.factories import create_listing, day, make_host

HTML = {"Accept": "text/html"}


def hooks(html: str, testid: str) -> list[str]:
    """The opening tags carrying ``data-testid=testid``."""
    return re.findall(rf'<[^>]*data-testid="{testid}"[^>]*>', html)


async def test_home_has_the_search_form_in_korean_by_default(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/", headers=HTML)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="ko">' in html
    (form,) = hooks(html, "search")
    assert form.startswith("<form")
    assert 'action="/search"' in form
    for name in ("region", "check_in", "check_out", "guests"):
        assert f'name="{name}"' in html
    assert "검색" in html
    assert "체크인" in html
    assert '<label for="region">' in html  # every input has its label


async def test_english_by_accept_language_or_by_the_switch(app_client: httpx.AsyncClient) -> None:
    english = await app_client.get("/", headers=HTML | {"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.text
    assert "Check-in" in english.text
    switched = await app_client.get("/lang/en", params={"next": "/search?region=Seoul"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/search?region=Seoul"
    assert "haot_lang=en" in switched.headers["set-cookie"]
    app_client.cookies.set("haot_lang", "en")
    try:
        assert '<html lang="en">' in (await app_client.get("/", headers=HTML)).text
    finally:
        app_client.cookies.clear()
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        answer = await app_client.get("/lang/en", params={"next": elsewhere})
        assert answer.headers["location"] == "/"  # never an open redirect


async def test_search_results_link_to_the_lodging_with_the_stay_and_its_total(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=120_000)
    check_in, check_out = day(3), day(5)
    page = await app_client.get(
        "/search",
        params={
            "region": "Seoul",
            "check_in": check_in.isoformat(),
            "check_out": check_out.isoformat(),
            "guests": 2,
        },
        headers=HTML,
    )
    assert page.status_code == 200, page.text
    (card,) = hooks(page.text, "lodging-card")
    assert card
    lodging_id = listing.lodging["id"]
    assert (
        f'href="/lodgings/{lodging_id}?check_in={check_in}&amp;check_out={check_out}&amp;guests=2"'
        in page.text
    )
    (total,) = hooks(page.text, "total-price")
    assert 'data-value="240000"' in total
    assert "₩240,000" in page.text  # Korean money


async def test_a_search_the_api_refuses_shows_the_form_again_with_the_reason(
    app_client: httpx.AsyncClient,
) -> None:
    page = await app_client.get(
        "/search",
        params={"region": "Seoul", "check_in": day(5).isoformat(), "check_out": day(3).isoformat()},
        headers=HTML,
    )
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert hooks(page.text, "search")
    assert 'class="error"' in page.text


async def test_lodging_page_lists_room_types_with_book_links_and_the_month(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=99_000)
    check_in = day(2)
    check_out = check_in + timedelta(days=1)
    page = await app_client.get(
        f"/lodgings/{listing.lodging['id']}",
        params={"check_in": check_in.isoformat(), "check_out": check_out.isoformat(), "guests": 2},
        headers=HTML,
    )
    assert page.status_code == 200, page.text
    (room,) = hooks(page.text, "room-type")
    assert room
    (book,) = hooks(page.text, "book")
    room_type_id = listing.room_type["id"]
    stay = f"check_in={check_in}&amp;check_out={check_out}&amp;guests=2"
    assert f'href="/book?room_type_id={room_type_id}&amp;{stay}"' in book
    assert "₩99,000" in page.text


async def test_pages_answer_html_errors_and_the_api_keeps_problem_json(
    app_client: httpx.AsyncClient,
) -> None:
    missing = await app_client.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "없는 페이지" in missing.text
    for path in ("/lodgings/not-an-id", "/lodgings/00000000-0000-0000-0000-000000000000"):
        gone = await app_client.get(path, headers=HTML)
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("text/html")
    api = await app_client.get("/api/v1/no-such-thing", headers=HTML)
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_a_page_that_fails_answers_an_html_500(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the API is gone")

    monkeypatch.setattr(Api, "get", broken)
    page = await app_client.get("/", headers=HTML)
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "문제가 생겼습니다" in page.text
    api = await app_client.get("/api/v1/lodgings")  # the API itself is fine
    assert api.status_code == 200


async def test_the_lodging_month_is_a_calendar_whose_days_choose_a_night(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=85_000)
    first = day(2)
    month = first.isoformat()[:7]
    page = await app_client.get(
        f"/lodgings/{listing.lodging['id']}", params={"month": month}, headers=HTML
    )
    assert page.status_code == 200
    cell = re.search(
        rf'data-testid="night" data-date="{first}" data-value="85000" data-status="OPEN"', page.text
    )
    assert cell, page.text
    night = f"check_in={first}&amp;check_out={first + timedelta(days=1)}&amp;month={month}"
    assert f'href="/lodgings/{listing.lodging["id"]}?{night}#room-' in page.text
    # A month of weeks from Sunday: every week row has seven cells.
    grid = re.search(r'<table class="month-grid".*?</table>', page.text, re.S)
    assert grid
    for week in re.findall(r"<tr>(.*?)</tr>", grid.group(0), re.S)[1:]:
        assert week.count("<td") == 7
    later = await app_client.get(
        f"/lodgings/{listing.lodging['id']}", params={"month": "2099-13"}, headers=HTML
    )
    assert later.status_code == 200  # not a month: the current one instead
