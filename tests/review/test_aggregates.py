"""Each lodging's rating and review count: kept by the review context in the same transaction as
the review's change (count, sum, version), sent through the outbox, applied by the lodging context
only when newer. They stay exact however reviews come and go (written, edited, hidden, shown,
deleted), however often and in whatever order the events are delivered, and under concurrency
(PostgreSQL: 50 reviews at once, racing first reviews of one stay, mixed changes at once)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx

from haot.platform.events import Event
from haot.platform.ids import new_id
from tests.reservation.conftest import World
from tests.review.conftest import (
    API,
    ReviewDay,
    Stay,
    completed_stay,
    completed_stays,
    consumer,
    delete,
    edit,
    expected_figures,
    lodging_figures,
    lodging_row,
    moderate,
    postgres_only,
    problem_code,
    rating_events,
    review_rows,
    stats_row,
    version_of,
    write,
    written,
)

LODGING_CONSUMER = "lodging.reviews"


async def assert_exact(world: World, lodging_id: Any = None) -> tuple[Any, int]:
    """The detail's figures, the lodging row, the review context's stats and the newest event all
    agree with a recomputation from the review rows (neither deleted nor hidden)."""
    lodging_id = lodging_id or world.lodging_id
    ratings = await _visible(world, lodging_id)
    expected = expected_figures(ratings)
    assert await lodging_figures(world, lodging_id) == expected
    stats = await stats_row(world, lodging_id)
    assert stats is not None
    assert (stats.review_count, stats.rating_sum) == (len(ratings), sum(ratings))
    row = await lodging_row(world, lodging_id)
    assert (row.review_count, row.rating_sum, row.rating_version) == (
        len(ratings),
        sum(ratings),
        stats.version,
    )
    events = await rating_events(world, lodging_id)
    versions = sorted(version_of(event) for event in events)
    assert versions == list(range(1, stats.version + 1)), "one event per change, none lost"
    newest = max(events, key=version_of).payload
    assert (newest["review_count"], newest["rating_sum"]) == (len(ratings), sum(ratings))
    return expected


async def _visible(world: World, lodging_id: Any) -> list[int]:
    rows = await review_rows(world, lodging_id)
    return [row.rating for row in rows if row.deleted_at is None and not row.hidden]


async def replay(world: World, events: list[Event], *, seed: int = 14) -> None:
    """Deliver ``events`` to the lodging consumer again as a broker would after a crash: the
    same ids twice over (the inbox skips them), then under new ids (the inbox cannot recognise
    them; only the version can) shuffled, newest first, and one by one oldest last."""
    lodgings = consumer(world, LODGING_CONSUMER)
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    await lodgings.handle_batch(shuffled + shuffled)
    await lodgings.handle_batch([replace(event, id=new_id()) for event in shuffled])
    newest_first = sorted(events, key=version_of, reverse=True)
    await lodgings.handle_batch([replace(event, id=new_id()) for event in newest_first])
    for event in newest_first:
        await lodgings.handle_batch([replace(event, id=new_id())])
    await world.settle()


# Both engines --------------------------------------------------------------------------------


async def test_the_figures_follow_every_change_of_a_review(
    world: World, review_day: ReviewDay
) -> None:
    first, second, third = await completed_stays(world, 3)
    review_day.today = first.check_out
    assert await lodging_figures(world) == (None, 0)

    a = await written(world, first, rating=5)
    assert await assert_exact(world) == (5.0, 1)
    b = await written(world, second, rating=2)
    assert await assert_exact(world) == (3.5, 2)
    c = await written(world, third, rating=4)
    assert await assert_exact(world) == (3.67, 3)

    assert (await edit(world, second.guest, b["id"], rating=3)).status_code == 200
    assert await assert_exact(world) == (4.0, 3)
    # An edit that leaves the rating alone moves nothing (and emits nothing).
    events_before = len(await rating_events(world))
    assert (await edit(world, second.guest, b["id"], text="only words")).status_code == 200
    assert len(await rating_events(world)) == events_before
    assert await assert_exact(world) == (4.0, 3)

    assert (await moderate(world, a["id"], hidden=True, reason="fake")).status_code == 200
    assert await assert_exact(world) == (3.5, 2)
    assert (await delete(world, third.guest, c["id"])).status_code == 204
    assert await assert_exact(world) == (3.0, 1)
    assert (await moderate(world, a["id"], hidden=False)).status_code == 200
    assert await assert_exact(world) == (4.0, 2)
    assert (await delete(world, first.guest, a["id"])).status_code == 204
    assert (await delete(world, second.guest, b["id"])).status_code == 204
    assert await assert_exact(world) == (None, 0)


async def test_redelivered_and_reordered_events_change_nothing(
    world: World, review_day: ReviewDay
) -> None:
    first, second, third = await completed_stays(world, 3)
    review_day.today = first.check_out
    a = await written(world, first, rating=1)
    await written(world, second, rating=5)
    c = await written(world, third, rating=2)
    assert (await edit(world, first.guest, a["id"], rating=4)).status_code == 200
    assert (await moderate(world, c["id"], hidden=True, reason="off topic")).status_code == 200
    expected = await assert_exact(world)
    assert expected == (4.5, 2)

    await replay(world, await rating_events(world))
    assert await assert_exact(world) == expected

    # A change after all that still goes through: the version moved on, it is newer.
    assert (await moderate(world, c["id"], hidden=False)).status_code == 200
    assert await assert_exact(world) == (3.67, 3)
    await replay(world, await rating_events(world), seed=41)
    assert await assert_exact(world) == (3.67, 3)


async def test_an_event_arriving_before_its_predecessors_wins_over_them(
    world: World, review_day: ReviewDay
) -> None:
    """Three reviews written and delivered; then the lodging row is wound back as if none of
    their events had arrived, and they arrive newest first (new ids): the newest figures stay."""
    first, second, third = await completed_stays(world, 3)
    review_day.today = first.check_out
    lodgings = consumer(world, LODGING_CONSUMER)
    for stay, rating in ((first, 3), (second, 4), (third, 5)):
        await written(world, stay, rating=rating)
    await world.settle()
    events = sorted(await rating_events(world), key=version_of)
    assert [(e.payload["review_count"], e.payload["rating_sum"]) for e in events] == [
        (1, 3),
        (2, 7),
        (3, 12),
    ]
    await _reset_lodging_rating(world)
    for event in reversed(events):
        await lodgings.handle_batch([replace(event, id=new_id())])
    assert await assert_exact(world) == (4.0, 3)


async def _reset_lodging_rating(world: World) -> None:
    from sqlalchemy import update

    from haot.lodging.models import Lodging

    async with world.platform.databases.sessions_for("lodging")() as session:
        await session.execute(
            update(Lodging)
            .where(Lodging.id == world.lodging_id)
            .values(review_count=0, rating_sum=0, rating_avg=None, rating_version=0)
        )
        await session.commit()


async def _search(world: World, **params: Any) -> list[tuple[str, Any, int]]:
    response = await world.http.get(f"{API}/lodgings", params=params)
    assert response.status_code == 200, response.text
    return [(item["id"], item["rating"], item["review_count"]) for item in response.json()["items"]]


async def test_search_sorts_by_the_figures(world: World, review_day: ReviewDay) -> None:
    from haot.platform.auth import Role

    other_host = world.principal(Role.HOST)
    best, best_room_type = await world.add_lodging(other_host)
    unrated, _ = await world.add_lodging(world.principal(Role.HOST))
    busy = str(world.lodging_id)
    busy_stays = await completed_stays(world, 3)
    best_stay = await completed_stay(world, room_type_id=best_room_type, lodging_id=best)
    review_day.today = best_stay.check_out
    for stay, rating in zip(busy_stays, (5, 4, 4), strict=True):
        await written(world, stay, rating=rating)
    best_review = await written(world, best_stay, rating=5)
    await world.settle()

    dated = {
        "check_in": (world.today + timedelta(days=20)).isoformat(),
        "check_out": (world.today + timedelta(days=22)).isoformat(),
        "guests": 2,
    }
    for stay_params in ({}, dated):
        assert await _search(world, sort="rating", **stay_params) == [
            (str(best), 5.0, 1),
            (busy, 4.33, 3),
            (str(unrated), None, 0),
        ]
        assert await _search(world, sort="reviews", **stay_params) == [
            (busy, 4.33, 3),
            (str(best), 5.0, 1),
            (str(unrated), None, 0),
        ]

    # Its one review hidden, the best is unrated: it falls behind the rated one.
    assert (await moderate(world, best_review["id"], hidden=True, reason="x")).status_code == 200
    await world.settle()
    for stay_params in ({}, dated):
        by_rating = await _search(world, sort="rating", **stay_params)
        assert by_rating[0] == (busy, 4.33, 3)
        assert sorted(by_rating[1:]) == sorted([(str(best), None, 0), (str(unrated), None, 0)])
        by_reviews = await _search(world, sort="reviews", **stay_params)
        assert by_reviews[0] == (busy, 4.33, 3)


# PostgreSQL: concurrency -----------------------------------------------------------------------


@postgres_only
async def test_racing_first_reviews_of_one_stay_make_exactly_one(
    world: World, review_day: ReviewDay
) -> None:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    responses = await asyncio.gather(
        *(write(world, stay, rating=rating, text=f"try {rating}") for rating in [1, 2, 3, 4, 5] * 2)
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.text for r in responses]
    refused = [r for r in responses if r.status_code != 201]
    assert {(r.status_code, problem_code(r)) for r in refused} == {(409, "already_reviewed")}
    assert len(refused) == 9
    (row,) = await review_rows(world)
    assert row.rating == created[0].json()["rating"]
    assert len(await rating_events(world)) == 1
    assert await assert_exact(world) == (float(row.rating), 1)


async def _concurrently(calls: list[Any]) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


@postgres_only
async def test_fifty_concurrent_reviews_stay_exact_through_redelivery_and_changes(
    world: World, review_day: ReviewDay
) -> None:
    """Issue 14: 50 reviews posted at once, every event replayed, the count and the average
    exact; then hides, deletes and edits at once (some on the same review), still exact."""
    room_type = await world.add_room_type(rooms=50, start=world.today, nights=10)
    stays: list[Stay] = await completed_stays(world, 50, room_type_id=room_type)
    review_day.today = stays[0].check_out
    rng = random.Random(1414)
    ratings = [rng.randint(1, 5) for _ in stays]

    responses = await _concurrently(
        [
            write(world, stay, rating=rating, text=f"리뷰 {i} ⭐")
            for i, (stay, rating) in enumerate(zip(stays, ratings, strict=True))
        ]
    )
    assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses]
    reviews = [r.json() for r in responses]
    await world.settle()
    assert await lodging_figures(world) == (round(sum(ratings) / 50, 2), 50)
    events = await rating_events(world)
    # Each of the 50 changes saw the one before: version v counts v reviews.
    assert sorted((version_of(e), e.payload["review_count"]) for e in events) == [
        (v, v) for v in range(1, 51)
    ]
    assert await assert_exact(world) == (round(sum(ratings) / 50, 2), 50)

    await replay(world, events)
    assert await assert_exact(world) == (round(sum(ratings) / 50, 2), 50)

    # Hides, deletes and edits at once; some reviews get two or three of them.
    calls: list[tuple[str, Any]] = []
    for i in range(0, 10):
        calls.append(("hide", moderate(world, reviews[i]["id"], hidden=True, reason="spam")))
    for i in range(10, 20):
        calls.append(("delete", delete(world, stays[i].guest, reviews[i]["id"])))
    for i in range(20, 30):
        for rating in (1, 3, 5):
            calls.append(("edit", edit(world, stays[i].guest, reviews[i]["id"], rating=rating)))
    for i in range(30, 35):
        calls.append(("hide", moderate(world, reviews[i]["id"], hidden=True, reason="rude")))
        calls.append(("edit", edit(world, stays[i].guest, reviews[i]["id"], rating=1)))
    for i in range(35, 40):
        calls.append(("delete", delete(world, stays[i].guest, reviews[i]["id"])))
        calls.append(("edit?", edit(world, stays[i].guest, reviews[i]["id"], rating=5)))
    for i in range(40, 45):
        calls.append(("delete", delete(world, stays[i].guest, reviews[i]["id"])))
        calls.append(("hide?", moderate(world, reviews[i]["id"], hidden=True, reason="x")))
    rng.shuffle(calls)
    answers = await _concurrently([call for _, call in calls])
    for (kind, _), answer in zip(calls, answers, strict=True):
        allowed = {
            "hide": {200},
            "delete": {204},
            "edit": {200},
            "edit?": {200, 404},  # after its review's deletion: not found
            "hide?": {200, 404},
        }[kind]
        assert answer.status_code in allowed, (kind, answer.text)

    rows = {str(row.id): row for row in await review_rows(world)}
    assert all(rows[reviews[i]["id"]].hidden for i in [*range(10), *range(30, 35)])
    assert all(rows[reviews[i]["id"]].deleted_at for i in [*range(10, 20), *range(35, 45)])
    assert all(rows[reviews[i]["id"]].rating in (1, 3, 5) for i in range(20, 30))
    visible = [row.rating for row in rows.values() if row.deleted_at is None and not row.hidden]
    assert len(visible) == 50 - 10 - 10 - 5 - 5 - 5
    expected = await assert_exact(world)
    assert expected == expected_figures(visible)

    await replay(world, await rating_events(world), seed=4141)
    assert await assert_exact(world) == expected
    public = await world.http.get(
        f"{API}/lodgings/{world.lodging_id}/reviews", params={"size": 100}
    )
    assert public.json()["total"] == len(visible)
    assert sorted(item["rating"] for item in public.json()["items"]) == sorted(visible)
