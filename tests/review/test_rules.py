"""Who may review what, and until when, over HTTP on both database engines: only the guest of a
COMPLETED stay, once per reservation (a deleted review keeps the slot), from the check-out day
through check-out + HAOT_REVIEW_WINDOW_DAYS (30) inclusive; the author edits and deletes within
the same window."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from haot.platform.auth import Role
from haot.platform.ids import new_id
from haot.reservation import events as reservation_events
from tests.reservation.conftest import World, outbox
from tests.reservation.helpers import book, read
from tests.review.conftest import (
    API,
    ReviewDay,
    complete_stays,
    completed_stay,
    completed_stays,
    confirmed_stay,
    consumer,
    delete,
    edit,
    expected_figures,
    lodging_figures,
    problem_code,
    stats_row,
    write,
    written,
)

# Who may write ---------------------------------------------------------------------------------


async def test_the_guest_of_a_completed_stay_reviews_it(
    world: World, review_day: ReviewDay
) -> None:
    stay = await completed_stay(world)
    review_day.today = stay.check_out + timedelta(days=3)
    created = await written(world, stay, rating=4, text="Clean and quiet.")
    assert created["reservation_id"] == stay.reservation_id
    assert created["lodging_id"] == str(world.lodging_id)
    assert (created["rating"], created["text"], created["image_urls"]) == (
        4,
        "Clean and quiet.",
        [],
    )
    assert (created["check_in"], created["check_out"]) == (
        stay.check_in.isoformat(),
        stay.check_out.isoformat(),
    )
    assert (created["hidden"], created["reply"], created["edited"]) == (False, None, False)
    assert created["stayed_in"] == stay.check_in.isoformat()[:7]
    mine = await world.http.get(
        f"{API}/reservations/{stay.reservation_id}/review", headers=world.auth(stay.guest)
    )
    assert mine.status_code == 200, mine.text
    assert mine.json() == created
    assert await lodging_figures(world) == (4.0, 1)


async def test_a_confirmed_stay_cannot_be_reviewed_yet(world: World, review_day: ReviewDay) -> None:
    stay = await confirmed_stay(world, start=2)
    review_day.today = stay.check_out  # even on its check-out day: the job has not completed it
    response = await write(world, stay)
    assert (response.status_code, problem_code(response)) == (409, "stay_not_completed")
    assert await lodging_figures(world) == (None, 0)


async def test_a_cancelled_stay_cannot_be_reviewed(world: World, review_day: ReviewDay) -> None:
    stay = await confirmed_stay(world, start=10)
    cancelled = await world.http.post(
        f"{API}/reservations/{stay.reservation_id}/cancel", headers=world.auth(stay.guest)
    )
    assert cancelled.status_code == 200, cancelled.text
    await world.settle()
    assert (await read(world, stay.guest, stay.reservation_id))["status"] == "CANCELLED"
    # The job after its check-out leaves a cancelled stay alone.
    assert await complete_stays(world, stay.check_out + timedelta(days=1)) == 0
    review_day.today = stay.check_out
    response = await write(world, stay)
    assert (response.status_code, problem_code(response)) == (409, "stay_not_completed")


async def test_pending_expired_unknown_and_others_reservations_are_not_found(
    world: World, review_day: ReviewDay
) -> None:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    stranger = world.guest()

    # Another guest's completed stay: as if it did not exist.
    response = await write(world, stay, who=stranger)
    assert (response.status_code, problem_code(response)) == (404, "reservation_not_found")
    # Nor may its lodging's host (or an admin) review it.
    for who in (world.host, world.principal(Role.ADMIN)):
        response = await write(world, stay, who=who)
        assert (response.status_code, problem_code(response)) == (404, "reservation_not_found")

    # A reservation still waiting for its payment; then the same after its hold expired; and
    # an id nobody booked.
    pending = await book(world, stranger, 3)

    async def refused(reservation_id: str) -> None:
        response = await world.http.post(
            f"{API}/reservations/{reservation_id}/review",
            json={"rating": 5},
            headers=world.auth(stranger),
        )
        assert (response.status_code, problem_code(response)) == (404, "reservation_not_found")

    await refused(pending["id"])
    late = datetime.fromisoformat(pending["expires_at"]) + timedelta(seconds=1)
    assert await world.platform.jobs.run("expire-holds", as_of=late) == {"expired": 1}
    await world.settle()
    assert (await read(world, stranger, pending["id"]))["status"] == "EXPIRED"
    await refused(pending["id"])
    await refused(str(uuid.uuid4()))

    # Anonymous: 401, not a hint about the reservation.
    response = await world.http.post(
        f"{API}/reservations/{stay.reservation_id}/review", json={"rating": 5}
    )
    assert response.status_code == 401
    assert await lodging_figures(world) == (None, 0)


async def test_a_stay_is_reviewed_once_and_a_deleted_review_keeps_its_slot(
    world: World, review_day: ReviewDay
) -> None:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    created = await written(world, stay, rating=2)
    again = await write(world, stay, rating=5)
    assert (again.status_code, problem_code(again)) == (409, "already_reviewed")
    assert await lodging_figures(world) == (2.0, 1)

    gone = await delete(world, stay.guest, created["id"])
    assert gone.status_code == 204, gone.text
    assert await lodging_figures(world) == (None, 0)
    after_delete = await write(world, stay, rating=5)
    assert (after_delete.status_code, problem_code(after_delete)) == (409, "already_reviewed")
    assert await lodging_figures(world) == (None, 0)
    stats = await stats_row(world)
    assert stats is not None
    assert (stats.review_count, stats.rating_sum) == (0, 0)
    # Deleted: gone for its author as well, and a second delete finds nothing.
    mine = await world.http.get(
        f"{API}/reservations/{stay.reservation_id}/review", headers=world.auth(stay.guest)
    )
    assert (mine.status_code, problem_code(mine)) == (404, "review_not_found")
    twice = await delete(world, stay.guest, created["id"])
    assert (twice.status_code, problem_code(twice)) == (404, "review_not_found")


async def test_late_or_repeated_reservation_news_never_undoes_a_completion(
    world: World, review_day: ReviewDay
) -> None:
    """The review context follows the reservation's events at least once and in any order: a
    "confirmed" delivered again (under a new id, which the inbox cannot recognise) after
    "completed" must leave the stay reviewable."""
    stay = await completed_stay(world)
    follower = consumer(world, "review.reservations")
    for event_type in (
        reservation_events.ReservationCompleted.TYPE,
        reservation_events.ReservationConfirmed.TYPE,
    ):
        news = [
            row.to_event()
            for row in await outbox(world.platform, event_type)
            if row.key == stay.reservation_id
        ]
        assert news, event_type
        await follower.handle_batch(news + news)
        await follower.handle_batch([replace(event, id=new_id()) for event in news])
    review_day.today = stay.check_out
    await written(world, stay, rating=5)


# The window ------------------------------------------------------------------------------------


async def test_the_window_runs_from_check_out_through_thirty_days_after(
    world: World, review_day: ReviewDay
) -> None:
    on_check_out, last_day, day_after, day_before = await completed_stays(world, 4)
    check_out = on_check_out.check_out
    assert {s.check_out for s in (last_day, day_after, day_before)} == {check_out}

    review_day.today = check_out - timedelta(days=1)
    early = await write(world, day_before)
    assert (early.status_code, problem_code(early)) == (409, "review_window_closed")

    review_day.today = check_out
    first = await written(world, on_check_out, rating=5)
    assert first["editable_until"] == (check_out + timedelta(days=30)).isoformat()

    review_day.today = check_out + timedelta(days=30)
    await written(world, last_day, rating=3)

    review_day.today = check_out + timedelta(days=31)
    late = await write(world, day_after, rating=1)
    assert (late.status_code, problem_code(late)) == (409, "review_window_closed")
    assert await lodging_figures(world) == expected_figures([5, 3])


async def test_the_author_edits_and_deletes_until_the_last_day_only(
    world: World, review_day: ReviewDay
) -> None:
    kept, removed = await completed_stays(world, 2)
    check_out = kept.check_out
    review_day.today = check_out
    first = await written(world, kept, rating=2, text="first")
    second = await written(world, removed, rating=4)

    review_day.today = check_out + timedelta(days=30)
    edited = await edit(world, kept.guest, first["id"], rating=5, text="second thoughts")
    assert edited.status_code == 200, edited.text
    assert (edited.json()["rating"], edited.json()["text"], edited.json()["edited"]) == (
        5,
        "second thoughts",
        True,
    )
    assert await lodging_figures(world) == expected_figures([5, 4])

    review_day.today = check_out + timedelta(days=31)
    too_late = await edit(world, kept.guest, first["id"], rating=1)
    assert (too_late.status_code, problem_code(too_late)) == (409, "review_window_closed")
    gone_late = await delete(world, removed.guest, second["id"])
    assert (gone_late.status_code, problem_code(gone_late)) == (409, "review_window_closed")
    # Nothing moved, and someone else still gets a 404 (not a hint that the window closed).
    assert await lodging_figures(world) == expected_figures([5, 4])
    stranger = await edit(world, world.guest(), first["id"], rating=1)
    assert (stranger.status_code, problem_code(stranger)) == (404, "review_not_found")

    review_day.today = check_out + timedelta(days=30)
    assert (await delete(world, removed.guest, second["id"])).status_code == 204
    assert await lodging_figures(world) == expected_figures([5])
    mine = await world.http.get(
        f"{API}/reservations/{kept.reservation_id}/review", headers=world.auth(kept.guest)
    )
    assert (mine.json()["rating"], mine.json()["text"]) == (5, "second thoughts")


async def test_the_window_follows_the_setting(
    short_window_world: World, review_day: ReviewDay
) -> None:
    world = short_window_world
    last_day, day_after = await completed_stays(world, 2)
    check_out = last_day.check_out

    review_day.today = check_out + timedelta(days=7)
    created = await written(world, last_day, rating=4)
    assert created["editable_until"] == (check_out + timedelta(days=7)).isoformat()

    review_day.today = check_out + timedelta(days=8)
    late = await write(world, day_after)
    assert (late.status_code, problem_code(late)) == (409, "review_window_closed")
    too_late = await edit(world, last_day.guest, created["id"], rating=5)
    assert (too_late.status_code, problem_code(too_late)) == (409, "review_window_closed")
    assert await lodging_figures(world) == (4.0, 1)
