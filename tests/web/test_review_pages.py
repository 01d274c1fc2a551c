"""The guest's review pages over HTTP (both engines): the review form on a completed stay's page,
refusals beside their fields, editing and deleting (confirmed) within the window, and a lodging's
reviews on its page and its reviews page. The review window runs on Seoul's calendar: these tests
move the review context's "today" to the day after check-out."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from haot.platform.auth import Role
from tests.lodging.factories import day
from tests.web.test_account_pages import HTML, csrf_of, sign_up
from tests.web.test_booking_pages import booking_query, pay_form
from tests.web.test_checkout_pages import return_url_of


def admin(client: httpx.AsyncClient) -> dict[str, str]:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {platform.signer.issue(uuid.uuid4(), Role.ADMIN).token}"}


async def status_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(f"{path}/status", headers=HTML)
    found = re.search(r'data-testid="reservation-status" data-status="(\w+)"', page.text)
    assert found, page.text
    return found.group(1)


async def until_status(client: httpx.AsyncClient, path: str, wanted: str) -> None:
    for _ in range(100):
        if await status_of(client, path) == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never became {wanted}")


async def completed_stay(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, *, after: int = 1
) -> tuple[str, dict[str, Any]]:
    """A new guest's paid stay, completed the day after check-out, with the review context's
    today ``after`` days after check-out: the reservation page's path and the stay."""
    stay = await booking_query(client)
    await sign_up(client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    booked = await client.post("/book", data=await pay_form(client, stay), headers=HTML)
    payment_id = booked.headers["location"].rsplit("/", 2)[-2]
    went = await client.get(f"/payments/{payment_id}/checkout")
    assert went.status_code == 303
    approved = await client.post(
        f"/fake-portone/checkout/{payment_id}/approve",
        data={"return_url": return_url_of(went)},
    )
    assert approved.status_code == 303, approved.text
    path = (await client.get(f"/payments/{payment_id}/return", headers=HTML)).headers["location"]
    await until_status(client, path, "CONFIRMED")
    check_out = date.fromisoformat(stay["check_out"])
    completed = await client.post(
        "/api/v1/admin/jobs/complete-stays/run",
        params={"as_of": (check_out + timedelta(days=1)).isoformat()},
        headers=admin(client),
    )
    assert completed.status_code == 200, completed.text
    await until_status(client, path, "COMPLETED")
    monkeypatch.setattr(
        "haot.review.service.seoul_today", lambda: check_out + timedelta(days=after)
    )
    return path, stay


async def post_review(
    client: httpx.AsyncClient, path: str, fields: dict[str, str]
) -> httpx.Response:
    """Send the review form of the page at ``path``, again while the review context has not yet
    heard of the completion (the page says so: 409)."""
    for _ in range(100):
        page = await client.get(path, headers=HTML)
        sent = await client.post(
            f"{path}/review", data={"csrf": csrf_of(page.text)} | fields, headers=HTML
        )
        if sent.status_code != 409 or "잠시 후 리뷰를 다시" not in sent.text:
            return sent
        await asyncio.sleep(0.1)
    raise AssertionError("the review context never heard of the completed stay")


async def test_a_completed_stay_is_reviewed_from_its_page(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, stay = await completed_stay(app_client, monkeypatch)
    page = await app_client.get(path, headers=HTML)
    assert 'data-testid="review-form"' in page.text
    text = "조용하고 깨끗했어요 🌿\n다음에 또 올게요"
    sent = await post_review(
        app_client,
        path,
        {"rating": "4", "text": text, "image_urls": "https://img.example/a.jpg\n\n"},
    )
    assert sent.status_code == 303, sent.text
    shown = await app_client.get(sent.headers["location"], headers=HTML)
    assert 'data-testid="my-review">조용하고 깨끗했어요 🌿\n다음에 또 올게요<' in shown.text
    assert '<input type="radio" name="rating" value="4" required checked>' in shown.text

    # The lodging's page lists it (the rating follows through the lodging's consumer).
    lodging = await lodging_page_of(app_client, stay)
    for _ in range(100):
        lodging = await app_client.get(lodging.url.path, headers=HTML)
        if 'data-testid="review" data-value="4"' in lodging.text and "리뷰 1개" in lodging.text:
            break
        await asyncio.sleep(0.1)
    assert 'data-testid="review" data-value="4"' in lodging.text
    assert "리뷰 1개" in lodging.text
    everything = await app_client.get(f"{lodging.url.path}/reviews", headers=HTML)
    assert everything.status_code == 200
    assert everything.text.count('data-testid="review"') == 1


async def lodging_page_of(client: httpx.AsyncClient, stay: dict[str, Any]) -> httpx.Response:
    """The lodging page of the stay's room type (found through the API's search by its id)."""
    found = await client.get(
        "/api/v1/lodgings", params={"check_in": day(3).isoformat(), "check_out": day(4).isoformat()}
    )
    for item in found.json()["items"]:
        detail = await client.get(f"/api/v1/lodgings/{item['id']}")
        if any(room["id"] == stay["room_type_id"] for room in detail.json()["room_types"]):
            return await client.get(f"/lodgings/{item['id']}", headers=HTML)
    raise AssertionError("the stay's lodging is not found")


async def test_a_refused_review_shows_why_beside_its_field(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = await completed_stay(app_client, monkeypatch)
    too_long = await post_review(app_client, path, {"rating": "5", "text": "가" * 2001})
    assert too_long.status_code == 422
    assert 'id="text-error"' in too_long.text
    assert "가" * 2001 in too_long.text  # what was typed is kept
    bad_link = await post_review(app_client, path, {"rating": "5", "image_urls": "not a link"})
    assert bad_link.status_code == 422
    assert 'id="image_urls-error"' in bad_link.text
    no_rating = await post_review(app_client, path, {"text": "no stars"})
    assert no_rating.status_code == 422
    assert 'id="rating-error"' in no_rating.text


async def test_the_window_closes_the_form(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = await completed_stay(app_client, monkeypatch, after=31)
    late = await post_review(app_client, path, {"rating": "3"})
    assert late.status_code == 409
    assert 'class="error" role="alert"' in late.text


async def test_edit_then_delete_for_good(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = await completed_stay(app_client, monkeypatch)
    assert (await post_review(app_client, path, {"rating": "2", "text": "meh"})).status_code == 303
    page = await app_client.get(path, headers=HTML)
    review_id = re.search(r'action="/reviews/([0-9a-f-]{36})/edit"', page.text)
    assert review_id
    reservation_id = path.rsplit("/", 1)[-1]
    token = csrf_of(page.text)
    edited = await app_client.post(
        f"/reviews/{review_id.group(1)}/edit",
        data={"csrf": token, "reservation_id": reservation_id, "rating": "5", "text": "better"},
        headers=HTML,
    )
    assert edited.status_code == 303, edited.text
    after = await app_client.get(path, headers=HTML)
    assert 'data-testid="my-review">better<' in after.text

    unconfirmed = await app_client.post(
        f"/reviews/{review_id.group(1)}/delete",
        data={"csrf": token, "reservation_id": reservation_id},
        headers=HTML,
    )
    assert unconfirmed.status_code == 422
    assert 'id="confirm-error"' in unconfirmed.text
    deleted = await app_client.post(
        f"/reviews/{review_id.group(1)}/delete",
        data={"csrf": token, "reservation_id": reservation_id, "confirm": "yes"},
        headers=HTML,
    )
    assert deleted.status_code == 303
    gone = await app_client.get(path, headers=HTML)
    assert 'data-testid="my-review"' not in gone.text
    again = await post_review(app_client, path, {"rating": "4"})
    assert again.status_code == 409  # once per stay, deleted or not


async def test_someone_elses_stay_cannot_be_reviewed(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = await completed_stay(app_client, monkeypatch)
    app_client.cookies.clear()
    await sign_up(app_client, f"other-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/", headers=HTML)
    sent = await app_client.post(
        f"{path}/review", data={"csrf": csrf_of(page.text), "rating": "1"}, headers=HTML
    )
    assert sent.status_code == 404
    forged = await app_client.post(f"{path}/review", data={"rating": "1"}, headers=HTML)
    assert forged.status_code == 403
