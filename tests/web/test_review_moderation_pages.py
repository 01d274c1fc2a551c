"""The host's and the admin's review pages over HTTP (both engines; issues 13 and 14): the host
sees the reviews of their lodgings and replies to them (the reply written, replaced, removed; an
empty one refused beside its box); another host neither sees nor answers them; the admin lists
every review by visibility, hides one with a reason (refused without one) and shows it again.
Only hosts (and admins), and admins, see the pages; every form needs its CSRF token.

A review needs a completed stay, made the way a guest makes it: booked through the API, paid at
the fake PortOne, completed by the complete-stays job run as of the day after check-out. The stay
lies ahead of today, so the review context's "today" is moved past its check-out."""

from __future__ import annotations

import asyncio
import html
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from tests.lodging.factories import (
    Actor,
    create_listing,
    day,
    make_admin,
    make_host,
    make_user,
)
from tests.web.test_account_pages import HTML, csrf_of, sign_up
from tests.web.test_admin_pages import ENGLISH, field_error, log_in_on_the_page
from tests.web.test_checkout_pages import return_url_of
from tests.web.test_host_pages import log_in

API = "/api/v1"


@dataclass(frozen=True)
class StayDays:
    check_in: date
    check_out: date
    review: date  # the day after check-out, when the stay may be reviewed


# Set for each test by ``stay_days`` (never at import: a suite that passes midnight in Seoul
# between collecting and running a test would book a night that is no longer open).
DAYS = StayDays(date.min, date.min, date.min)
TEXT = '따뜻한 온돌, 조용한 밤 🌙\n<b>bold?</b> & "quoted"\nSecond line'
IMAGE = "https://img.example.com/room-1.jpg"


@pytest.fixture(autouse=True)
def stay_days(monkeypatch: pytest.MonkeyPatch) -> StayDays:
    """The stay's days, from today as the test starts; the review context's today is moved to
    the day after check-out."""
    days = StayDays(day(1), day(2), day(3))
    monkeypatch.setattr(sys.modules[__name__], "DAYS", days)
    monkeypatch.setattr("haot.review.service.seoul_today", lambda now=None: days.review)
    return days


async def eventually(check: Any, what: str, tries: int = 150) -> Any:
    """``check()``'s first answer that is not None, asked every 0.1 s (the events that carry a
    stay from one context to the next are delivered in the background)."""
    for _ in range(tries):
        if (found := await check()) is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def status_of(client: httpx.AsyncClient, guest: Actor, reservation_id: str) -> str:
    read = await client.get(f"{API}/reservations/{reservation_id}", headers=guest.headers)
    assert read.status_code == 200, read.text
    return str(read.json()["status"])


async def reviewed_stay(client: httpx.AsyncClient, **review: Any) -> dict[str, Any]:
    """A host's lodging, a guest's stay there booked, paid and completed, and its review."""
    host = await make_host(client)
    listing = await create_listing(client, host, price=80_000, name="Ondol House")
    guest = await make_user(client)
    booked = await client.post(
        f"{API}/reservations",
        json={
            "room_type_id": listing.room_type_id,
            "check_in": DAYS.check_in.isoformat(),
            "check_out": DAYS.check_out.isoformat(),
            "guests": 2,
        },
        headers=guest.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert booked.status_code == 201, booked.text
    reservation_id, payment_id = booked.json()["id"], booked.json()["payment_id"]

    # The guest pays at the (fake) PortOne and comes back.
    went = await client.get(f"/payments/{payment_id}/checkout")
    assert went.status_code == 303
    approved = await client.post(
        f"/fake-portone/checkout/{payment_id}/approve",
        data={"return_url": return_url_of(went)},
    )
    assert approved.status_code == 303, approved.text
    paid = await client.post(f"{API}/payments/{payment_id}/complete", headers=guest.headers)
    assert paid.status_code == 200, paid.text

    async def confirmed() -> bool | None:
        return await status_of(client, guest, reservation_id) == "CONFIRMED" or None

    await eventually(confirmed, "the reservation confirmed")

    admin = await make_admin(client)
    ran = await client.post(
        f"{API}/admin/jobs/complete-stays/run",
        params={"as_of": DAYS.review.isoformat()},
        headers=admin.headers,
    )
    assert ran.status_code == 200, ran.text
    assert await status_of(client, guest, reservation_id) == "COMPLETED"

    body = {"rating": 4, "text": TEXT, "image_urls": [IMAGE]} | review

    async def written() -> dict[str, Any] | None:
        # 404: the review context has not heard of the stay yet; 409: not of its completion.
        answer = await client.post(
            f"{API}/reservations/{reservation_id}/review", json=body, headers=guest.headers
        )
        if answer.status_code == 404 or (
            answer.status_code == 409 and answer.json()["code"] == "stay_not_completed"
        ):
            return None
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    created = await eventually(written, "the stay reviewable")
    return {
        "host": host,
        "guest": guest,
        "admin": admin,
        "listing": listing,
        "review": created,
        "reservation_id": reservation_id,
    }


async def public_reviews(client: httpx.AsyncClient, lodging_id: str) -> list[dict[str, Any]]:
    listed = await client.get(f"{API}/lodgings/{lodging_id}/reviews")
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def card(page: str, testid: str, review_id: str) -> str:
    """The part of ``page`` showing one review: its list item (and what follows it)."""
    for item in page.split('<li class="card review"')[1:]:
        opening = item.split(">", 1)[0]
        if f'data-testid="{testid}"' in opening and f'data-id="{review_id}"' in opening:
            return item
    raise AssertionError(f"no {testid} {review_id} on the page")


def back_of(page: str) -> str:
    """Where the first form of ``page`` goes back to (its ``back`` field)."""
    found = re.search(r'name="back" value="([^"]+)"', page)
    assert found, "no form with a way back"
    return html.unescape(found.group(1))


async def test_the_review_pages_are_for_hosts_and_admins(app_client: httpx.AsyncClient) -> None:
    for path in ("/host/reviews", "/admin/reviews"):
        anonymous = await app_client.get(path, headers=HTML)
        assert anonymous.status_code == 303, path
        assert anonymous.headers["location"].startswith("/login?next="), path

    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    for path in ("/host/reviews", "/admin/reviews"):
        refused = await app_client.get(path, headers=HTML)
        assert refused.status_code == 403, path
        assert "이 계정으로는 볼 수 없는 페이지입니다" in refused.text
    post = await app_client.post(
        f"/host/reviews/{uuid.uuid4()}/reply",
        data={"csrf": csrf_of(refused.text), "text": "Hi"},
        headers=HTML,
    )
    assert post.status_code == 403

    host = await make_host(app_client)
    await log_in(app_client, host)
    empty = await app_client.get("/host/reviews", headers=HTML)
    assert empty.status_code == 200, empty.text
    assert 'href="/host/reviews" aria-current="page">리뷰</a>' in empty.text
    assert "아직 리뷰가 없습니다" in empty.text
    assert (await app_client.get("/admin/reviews", headers=HTML)).status_code == 403
    broken = await app_client.get("/host/reviews?lodging_id=nonsense&page=x", headers=HTML)
    assert broken.status_code == 200, broken.text

    admin = await make_admin(app_client)
    await log_in_on_the_page(app_client, admin.email)
    home = await app_client.get("/admin", headers=ENGLISH)
    assert home.status_code == 200
    assert '<a href="/admin/reviews">Reviews</a>' in home.text
    listed = await app_client.get("/admin/reviews", headers=ENGLISH)
    assert listed.status_code == 200, listed.text
    assert 'href="/admin/reviews" aria-current="page"' in listed.text
    bad_filter = await app_client.get("/admin/reviews?lodging_id=nonsense", headers=ENGLISH)
    assert bad_filter.status_code == 422
    assert field_error(bad_filter.text, "search-lodging_id")


async def test_the_host_answers_a_review_and_changes_or_removes_the_answer(
    app_client: httpx.AsyncClient,
) -> None:
    world = await reviewed_stay(app_client)
    host, review, listing = world["host"], world["review"], world["listing"]
    review_id = review["id"]

    await log_in(app_client, host)
    page = await app_client.get("/host/reviews", headers=ENGLISH)
    assert page.status_code == 200, page.text
    shown = card(page.text, "host-review", review_id)
    assert 'data-testid="host-review" data-value="4"' in shown
    assert "Ondol House" in shown
    # The text as written: Unicode kept, markup escaped, each line on its own.
    assert "따뜻한 온돌, 조용한 밤 🌙<br>" in shown
    assert "&lt;b&gt;bold?&lt;/b&gt; &amp; &#34;quoted&#34;<br>Second line" in shown
    assert "<b>bold?</b>" not in shown
    assert f'href="{IMAGE}"' in shown
    assert 'alt="Photo 1 of the review"' in shown
    assert f"Stayed in {DAYS.check_in:%Y-%m}" in shown
    assert 'data-testid="hidden"' not in shown
    assert 'data-testid="reply"' in shown
    assert 'data-testid="remove-reply"' not in shown
    back = back_of(shown)
    assert back == "/host/reviews?page=1"

    of_lodging = await app_client.get(
        "/host/reviews", params={"lodging_id": listing.id}, headers=ENGLISH
    )
    assert review_id in of_lodging.text
    other_lodging = await app_client.get(
        "/host/reviews", params={"lodging_id": str(uuid.uuid4())}, headers=ENGLISH
    )
    assert other_lodging.status_code == 200
    assert review_id not in other_lodging.text

    action = f"/host/reviews/{review_id}/reply"
    token = csrf_of(page.text)
    no_token = await app_client.post(action, data={"text": "Thanks!"}, headers=HTML)
    assert no_token.status_code == 403

    empty = await app_client.post(
        action, data={"csrf": token, "text": "   ", "back": back}, headers=ENGLISH
    )
    assert empty.status_code == 422, empty.text
    assert field_error(empty.text, f"review-{review_id}-text")
    assert (await public_reviews(app_client, listing.id))[0]["reply"] is None

    answered = await app_client.post(
        action,
        data={"csrf": token, "text": "고맙습니다!\nCome again", "back": back},
        headers=ENGLISH,
    )
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"] == back
    public = await public_reviews(app_client, listing.id)
    assert public[0]["reply"]["text"] == "고맙습니다!\nCome again"

    page = await app_client.get("/host/reviews", headers=ENGLISH)
    shown = card(page.text, "host-review", review_id)
    assert re.search(r"<textarea[^>]*>고맙습니다!\nCome again</textarea>", shown)  # to edit
    assert 'data-testid="remove-reply"' in shown

    changed = await app_client.post(
        action, data={"csrf": token, "text": "Thank you, truly", "back": back}, headers=ENGLISH
    )
    assert changed.status_code == 303, changed.text
    assert (await public_reviews(app_client, listing.id))[0]["reply"]["text"] == "Thank you, truly"

    remove = f"/host/reviews/{review_id}/reply/delete"
    assert (await app_client.post(remove, data={"back": back}, headers=HTML)).status_code == 403
    removed = await app_client.post(remove, data={"csrf": token, "back": back}, headers=ENGLISH)
    assert removed.status_code == 303, removed.text
    assert (await public_reviews(app_client, listing.id))[0]["reply"] is None
    page = await app_client.get("/host/reviews", headers=ENGLISH)
    assert 'data-testid="remove-reply"' not in card(page.text, "host-review", review_id)

    # A form cannot send the host anywhere but back to the list.
    elsewhere = await app_client.post(
        action, data={"csrf": token, "text": "Again", "back": "https://evil.example/"}, headers=HTML
    )
    assert elsewhere.headers["location"] == "/host/reviews"

    other = await make_host(app_client, "other")
    await log_in(app_client, other)
    theirs = await app_client.get("/host/reviews", headers=ENGLISH)
    assert theirs.status_code == 200
    assert review_id not in theirs.text
    token = csrf_of(theirs.text)
    refused = await app_client.post(action, data={"csrf": token, "text": "Mine now"}, headers=HTML)
    assert refused.status_code == 404
    assert "text/html" in refused.headers["content-type"]
    not_theirs = await app_client.post(remove, data={"csrf": token}, headers=HTML)
    assert not_theirs.status_code == 404
    unknown = await app_client.post(
        "/host/reviews/not-a-review/reply", data={"csrf": token, "text": "Hi"}, headers=HTML
    )
    assert unknown.status_code == 404
    assert (await public_reviews(app_client, listing.id))[0]["reply"]["text"] == "Again"


async def test_the_admin_hides_a_review_with_a_reason_and_shows_it_again(
    app_client: httpx.AsyncClient,
) -> None:
    world = await reviewed_stay(app_client, rating=2)
    admin, host, guest, listing = world["admin"], world["host"], world["guest"], world["listing"]
    review_id = world["review"]["id"]

    await log_in_on_the_page(app_client, admin.email)
    page = await app_client.get("/admin/reviews", headers=ENGLISH)
    assert page.status_code == 200, page.text
    shown = card(page.text, "admin-review", review_id)
    assert 'data-testid="admin-review" data-status="SHOWN"' in shown
    assert 'data-value="2"' in shown
    assert guest.id in shown
    assert host.id in shown
    assert listing.id in shown
    assert "&lt;b&gt;bold?&lt;/b&gt;" in shown
    assert 'data-testid="moderate"' in shown
    assert 'data-testid="hide"' in shown
    back = back_of(shown)
    token = csrf_of(page.text)
    action = f"/admin/reviews/{review_id}"

    no_token = await app_client.post(action, data={"hidden": "true", "reason": "Spam"})
    assert no_token.status_code == 403
    no_reason = await app_client.post(
        action,
        data={"csrf": token, "hidden": "true", "reason": "  ", "back": back},
        headers=ENGLISH,
    )
    assert no_reason.status_code == 422, no_reason.text
    assert "reason" in field_error(no_reason.text, f"reason-{review_id}")
    assert 'data-status="SHOWN"' in card(no_reason.text, "admin-review", review_id)
    assert [r["id"] for r in await public_reviews(app_client, listing.id)] == [review_id]

    hidden = await app_client.post(
        action,
        data={"csrf": token, "hidden": "true", "reason": "Insults the host", "back": back},
        headers=ENGLISH,
    )
    assert hidden.status_code == 303, hidden.text
    assert hidden.headers["location"] == back
    assert await public_reviews(app_client, listing.id) == []
    page = await app_client.get("/admin/reviews", headers=ENGLISH)
    shown = card(page.text, "admin-review", review_id)
    assert 'data-status="HIDDEN"' in shown
    assert "Insults the host" in shown
    assert 'data-testid="show"' in shown
    assert 'data-testid="hide"' not in shown

    only_hidden = await app_client.get("/admin/reviews?hidden=true", headers=ENGLISH)
    assert review_id in only_hidden.text
    only_shown = await app_client.get("/admin/reviews?hidden=false", headers=ENGLISH)
    assert only_shown.status_code == 200
    assert review_id not in only_shown.text
    of_lodging = await app_client.get(
        "/admin/reviews", params={"lodging_id": listing.id, "hidden": "true"}, headers=ENGLISH
    )
    assert review_id in of_lodging.text
    kept = back_of(of_lodging.text)
    assert kept == f"/admin/reviews?hidden=true&lodging_id={listing.id}&page=1"

    # The host sees it marked hidden, with the reason.
    await log_in(app_client, host)
    host_page = await app_client.get("/host/reviews", headers=ENGLISH)
    marked = card(host_page.text, "host-review", review_id)
    assert 'data-testid="hidden"' in marked
    assert "Insults the host" in marked

    await log_in_on_the_page(app_client, admin.email)
    token = csrf_of((await app_client.get("/admin/reviews", headers=ENGLISH)).text)
    again = await app_client.post(
        action, data={"csrf": token, "hidden": "false", "back": kept}, headers=ENGLISH
    )
    assert again.status_code == 303, again.text
    assert again.headers["location"] == kept
    assert [r["id"] for r in await public_reviews(app_client, listing.id)] == [review_id]
    only_shown = await app_client.get("/admin/reviews?hidden=false", headers=ENGLISH)
    assert 'data-status="SHOWN"' in card(only_shown.text, "admin-review", review_id)
    assert review_id not in (await app_client.get("/admin/reviews?hidden=true")).text

    # Deleted by its author: listed as such, with nothing left to moderate.
    gone = await app_client.delete(f"{API}/reviews/{review_id}", headers=guest.headers)
    assert gone.status_code == 204, gone.text
    page = await app_client.get("/admin/reviews", headers=ENGLISH)
    deleted = card(page.text, "admin-review", review_id)
    assert 'data-status="DELETED"' in deleted
    assert 'data-testid="moderate"' not in deleted
    refused = await app_client.post(
        action, data={"csrf": token, "hidden": "true", "reason": "Late"}, headers=HTML
    )
    assert refused.status_code == 404
    unknown = await app_client.post(
        f"/admin/reviews/{uuid.uuid4()}", data={"csrf": token, "hidden": "false"}, headers=HTML
    )
    assert unknown.status_code == 404
