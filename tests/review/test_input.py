"""What a review may say, and how it reads back, over HTTP on both engines: ratings 1-5, text up
to 2,000 characters, at most ten http(s) image URLs, anything else a 422 ``validation_error`` that
changes nothing; Unicode text exactly as written; malformed ids a 404, never a 500; the public
list of a lodging's reviews anonymous, paged and sorted."""

from __future__ import annotations

import uuid
from typing import Any

from haot.platform.auth import Role
from haot.review.client import ReviewClient
from tests.reservation.conftest import World
from tests.review.conftest import (
    API,
    ReviewDay,
    Stay,
    completed_stay,
    completed_stays,
    delete,
    edit,
    lodging_figures,
    moderate,
    problem_code,
    public_reviews,
    review_rows,
    write,
    written,
)

IMAGE = "https://img.example.com/rooms/1.jpg"

BAD_BODIES: list[dict[str, Any]] = [
    {"rating": 0},
    {"rating": 6},
    {"rating": -1},
    {"rating": 4.5},
    {"rating": "five"},
    {"rating": "5"},
    {"rating": True},
    {"rating": None},
    {"text": "no rating"},
    {"rating": 5, "text": "x" * 2001},
    {"rating": 5, "text": "가" * 2001},
    {"rating": 5, "image_urls": [IMAGE] * 11},
    {"rating": 5, "image_urls": ["ftp://img.example.com/a.jpg"]},
    {"rating": 5, "image_urls": ["javascript:alert(1)"]},
    {"rating": 5, "image_urls": ["img.example.com/a.jpg"]},
    {"rating": 5, "image_urls": ["https://img.example.com/a b.jpg"]},
    {"rating": 5, "image_urls": ["https://"]},
    {"rating": 5, "image_urls": "https://img.example.com/a.jpg"},
    {"rating": 5, "image_urls": [42]},
    {"rating": 5, "user_id": "00000000-0000-0000-0000-000000000000"},
    {"rating": 5, "hidden": True},
]


async def _stay(world: World, review_day: ReviewDay) -> Stay:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    return stay


async def test_bad_reviews_are_refused_and_change_nothing(
    world: World, review_day: ReviewDay
) -> None:
    stay = await _stay(world, review_day)
    for body in BAD_BODIES:
        response = await world.http.post(
            f"{API}/reservations/{stay.reservation_id}/review",
            json=body,
            headers=world.auth(stay.guest),
        )
        assert (response.status_code, problem_code(response)) == (422, "validation_error"), body
    not_json = await world.http.post(
        f"{API}/reservations/{stay.reservation_id}/review",
        content=b"{rating: 5",
        headers={**world.auth(stay.guest), "content-type": "application/json"},
    )
    assert not_json.status_code == 422, not_json.text
    assert await review_rows(world) == []
    assert await lodging_figures(world) == (None, 0)
    # The slot is still free: a valid review goes in after all those refusals.
    await written(world, stay, rating=1)


async def test_the_limits_themselves_are_accepted(world: World, review_day: ReviewDay) -> None:
    lowest, highest = await completed_stays(world, 2)
    review_day.today = lowest.check_out
    images = [f"https://img.example.com/rooms/{i}.jpg" for i in range(10)]
    text = "가" * 2000
    low = await written(world, lowest, rating=1, text=text, image_urls=images)
    assert (low["rating"], low["text"], low["image_urls"]) == (1, text, images)
    high = await written(world, highest, rating=5, image_urls=["http://img.example.com/x.png"])
    assert (high["rating"], high["text"], high["image_urls"]) == (
        5,
        "",
        ["http://img.example.com/x.png"],
    )
    assert await lodging_figures(world) == (3.0, 2)


async def test_bad_edits_are_refused_and_change_nothing(
    world: World, review_day: ReviewDay
) -> None:
    stay = await _stay(world, review_day)
    review = await written(world, stay, rating=3, text="kept", image_urls=[IMAGE])
    bad_edits: list[dict[str, Any]] = [
        {},
        {"rating": 0},
        {"rating": 6},
        {"rating": 4.5},
        {"rating": "five"},
        {"rating": True},
        {"rating": None},
        {"text": None},
        {"image_urls": None},
        {"text": "x" * 2001},
        {"image_urls": [IMAGE] * 11},
        {"image_urls": ["javascript:alert(1)"]},
        {"rating": 5, "image_urls": ["ftp://img.example.com/a.jpg"]},
        {"rating": 5, "hidden": True},
        {"rating": 5, "lodging_id": "00000000-0000-0000-0000-000000000000"},
    ]
    for body in bad_edits:
        response = await edit(world, stay.guest, review["id"], **body)
        assert (response.status_code, problem_code(response)) == (422, "validation_error"), body
    # A null is refused beside its field (a form shows it there), not as "no change".
    response = await edit(world, stay.guest, review["id"], rating=None)
    assert [error["loc"][-1] for error in response.json()["errors"]] == ["rating"]
    mine = await world.http.get(
        f"{API}/reservations/{stay.reservation_id}/review", headers=world.auth(stay.guest)
    )
    assert (mine.json()["rating"], mine.json()["text"], mine.json()["image_urls"]) == (
        3,
        "kept",
        [IMAGE],
    )
    assert mine.json()["edited"] is False
    assert await lodging_figures(world) == (3.0, 1)

    # A partial edit changes what it names only.
    only_text = await edit(world, stay.guest, review["id"], text="changed")
    assert only_text.status_code == 200, only_text.text
    assert (only_text.json()["rating"], only_text.json()["image_urls"]) == (3, [IMAGE])
    no_images = await edit(world, stay.guest, review["id"], image_urls=[])
    assert (no_images.json()["text"], no_images.json()["image_urls"]) == ("changed", [])


UNICODE_TEXTS = [
    "정말 깨끗하고 조용했어요. 사장님 친절하세요! 다음에 또 올게요 🙏",
    # ZWJ family, a skin tone, a flag
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 four, \U0001f44d\U0001f3fd, "
    "\U0001f1f0\U0001f1f7",
    # decomposed accents and conjoining jamo: kept as sent, not normalised
    "Cafe\u0301 cre\u0300me bru\u0302le\u0301e; \u1112\u1161\u11ab \u1100\u1173\u11af",
    # Hebrew and Arabic with direction marks and an override
    "\u05e9\u05dc\u05d5\u05dd \u200f\u0645\u0631\u062d\u0628\u0627\u200e mixed "
    "\u202eRTL override\u202c done",
    # astral letters, quotes, a line break and a tab inside
    "math \U0001d518\U0001d52b\U0001d526 \U0001f600 \u00ab\u00bb \u201c\u201d line\nbreak\ttab",
]


async def test_unicode_text_round_trips_exactly(world: World, review_day: ReviewDay) -> None:
    stays = await completed_stays(world, len(UNICODE_TEXTS))
    review_day.today = stays[0].check_out
    for stay, text in zip(stays, UNICODE_TEXTS, strict=True):
        created = await written(world, stay, rating=5, text=text)
        assert created["text"] == text
        mine = await world.http.get(
            f"{API}/reservations/{stay.reservation_id}/review", headers=world.auth(stay.guest)
        )
        assert mine.json()["text"] == text
        edited = await edit(world, stay.guest, created["id"], text=text + " / " + text[::-1])
        assert edited.json()["text"] == text + " / " + text[::-1]
    public = {item["text"] for item in (await public_reviews(world, world.lodging_id))["items"]}
    assert public == {text + " / " + text[::-1] for text in UNICODE_TEXTS}
    assert {row.text for row in await review_rows(world)} == public


async def test_two_thousand_astral_characters_fit_and_one_more_does_not(
    world: World, review_day: ReviewDay
) -> None:
    """The limit counts characters, not bytes (2,000 emoji are 8,000 bytes of UTF-8)."""
    stay = await _stay(world, review_day)
    too_long = await write(world, stay, rating=5, text="😀" * 2001)
    assert (too_long.status_code, problem_code(too_long)) == (422, "validation_error")
    created = await written(world, stay, rating=5, text="😀" * 2000)
    assert created["text"] == "😀" * 2000
    (public,) = (await public_reviews(world, world.lodging_id))["items"]
    assert public["text"] == "😀" * 2000


async def test_a_nul_character_is_refused_or_kept_never_a_server_error(
    world: World, review_day: ReviewDay
) -> None:
    """PostgreSQL cannot store NUL in text: that must be the caller's 422, not our 500."""
    stay = await _stay(world, review_day)
    response = await write(world, stay, rating=5, text="before\x00after")
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert response.json()["text"] == "before\x00after"
    else:
        assert problem_code(response) == "validation_error"
        assert await lodging_figures(world) == (None, 0)
        await written(world, stay, rating=5, text="before after")


MALFORMED = ["not-a-uuid", "1", "0" * 40, "%20", "01a23ff8-27a3-79a8-993c-9a3ea0fc642", "null"]


async def test_malformed_and_unknown_ids_are_not_found(world: World, review_day: ReviewDay) -> None:
    stay = await _stay(world, review_day)
    await written(world, stay, rating=4)
    guest, host = world.auth(stay.guest), world.auth(world.host)
    admin = world.auth(world.principal(Role.ADMIN))
    unknown = str(uuid.uuid4())
    for bad in [*MALFORMED, unknown]:
        calls = [
            world.http.post(f"{API}/reservations/{bad}/review", json={"rating": 5}, headers=guest),
            world.http.get(f"{API}/reservations/{bad}/review", headers=guest),
            world.http.patch(f"{API}/reviews/{bad}", json={"rating": 5}, headers=guest),
            world.http.delete(f"{API}/reviews/{bad}", headers=guest),
            world.http.put(f"{API}/reviews/{bad}/reply", json={"text": "hi"}, headers=host),
            world.http.delete(f"{API}/reviews/{bad}/reply", headers=host),
            world.http.patch(
                f"{API}/admin/reviews/{bad}", json={"hidden": True, "reason": "x"}, headers=admin
            ),
        ]
        if bad != unknown:  # an unknown lodging simply has no reviews
            calls.append(world.http.get(f"{API}/lodgings/{bad}/reviews"))
        for call in calls:
            response = await call
            assert response.status_code == 404, (bad, response.request.url, response.text)
            assert problem_code(response).endswith("_not_found"), response.text
    assert await lodging_figures(world) == (4.0, 1)


async def test_the_public_list_is_anonymous_paged_and_sorted(
    world: World, review_day: ReviewDay
) -> None:
    stays = await completed_stays(world, 6)
    review_day.today = stays[0].check_out
    ratings = [3, 5, 3, 4, 1, 2]
    created = [
        await written(world, stay, rating=rating, text=f"review {i}")
        for i, (stay, rating) in enumerate(zip(stays, ratings, strict=True))
    ]
    ids = [review["id"] for review in created]
    # One deleted, one hidden: neither listed, nor counted in ``total``.
    assert (await delete(world, stays[5].guest, ids[5])).status_code == 204
    assert (await moderate(world, ids[4], hidden=True, reason="off topic")).status_code == 200
    listed = ids[:4]  # ratings 3, 5, 3, 4

    async def all_pages(sort: str | None, size: int) -> list[str]:
        params: dict[str, Any] = {"size": size}
        if sort is not None:
            params["sort"] = sort
        seen: list[str] = []
        page_no = 1
        while True:
            page = await public_reviews(world, world.lodging_id, page=page_no, **params)
            assert (page["page"], page["size"], page["total"]) == (page_no, size, 4)
            if not page["items"]:
                break
            assert len(page["items"]) <= size
            seen += [item["id"] for item in page["items"]]
            page_no += 1
        return seen

    newest = list(reversed(listed))
    by_rating = [ids[1], ids[3], ids[2], ids[0]]  # 5, 4, then the 3s newest first
    by_rating_asc = [ids[2], ids[0], ids[3], ids[1]]  # the 3s newest first, 4, 5
    for size in (1, 3, 20):
        assert await all_pages(None, size) == newest
        assert await all_pages("newest", size) == newest
        assert await all_pages("rating", size) == by_rating
        assert await all_pages("-rating", size) == by_rating_asc

    page = await public_reviews(world, world.lodging_id)
    item = page["items"][0]
    # What anyone sees: no author, no reservation, no moderation details.
    assert set(item) == {
        "id",
        "lodging_id",
        "rating",
        "text",
        "image_urls",
        "stayed_in",
        "created_at",
        "updated_at",
        "edited",
        "reply",
    }
    for params in ({"sort": "best"}, {"size": 0}, {"size": 101}, {"page": 0}, {"page": "x"}):
        response = await world.http.get(f"{API}/lodgings/{world.lodging_id}/reviews", params=params)
        assert (response.status_code, problem_code(response)) == (422, "validation_error"), params


async def test_the_in_process_client_reads_what_the_public_list_reads(
    world: World, review_day: ReviewDay
) -> None:
    """The review context's client (for other contexts) answers the lodging's visible reviews,
    as the anonymous API does."""
    stays = await completed_stays(world, 3)
    review_day.today = stays[0].check_out
    created = [
        await written(world, stay, rating=n + 2, text=f"client {n}") for n, stay in enumerate(stays)
    ]
    assert (await moderate(world, created[0]["id"], hidden=True, reason="spam")).status_code == 200
    client: ReviewClient = world.platform.services["review.client"]
    for sort in ("newest", "rating", "-rating"):
        public = await world.http.get(
            f"{API}/lodgings/{world.lodging_id}/reviews", params={"sort": sort, "size": 2}
        )
        read = await client.of_lodging(world.lodging_id, sort=sort, size=2)
        assert read.model_dump(mode="json") == public.json()
        assert read.total == 2
