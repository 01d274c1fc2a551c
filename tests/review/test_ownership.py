"""Whose review is whose, over HTTP on both engines: only its author reads (as theirs), edits and
deletes it; only the lodging's host replies (a second reply replaces the first) and removes the
reply; only an admin hides (with a reason) and shows again, and a hidden review leaves the public
list and the lodging's rating. Everyone else gets a 404 (403 for a wrong role, 401 without a
token)."""

from __future__ import annotations

from typing import Any

from haot.platform.auth import Role
from tests.reservation.conftest import World
from tests.review.conftest import (
    API,
    ReviewDay,
    Stay,
    completed_stay,
    completed_stays,
    delete,
    edit,
    expected_figures,
    lodging_figures,
    moderate,
    problem_code,
    public_reviews,
    written,
)


async def _reviewed(
    world: World, review_day: ReviewDay, **body: Any
) -> tuple[Stay, dict[str, Any]]:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    return stay, await written(world, stay, **body)


async def _mine(world: World, stay: Stay) -> dict[str, Any]:
    response = await world.http.get(
        f"{API}/reservations/{stay.reservation_id}/review", headers=world.auth(stay.guest)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_only_the_author_edits_or_deletes(world: World, review_day: ReviewDay) -> None:
    stay, review = await _reviewed(world, review_day, rating=3, text="as written")
    others = [world.guest(), world.host, world.principal(Role.ADMIN)]
    for who in others:
        changed = await edit(world, who, review["id"], rating=1, text="not mine")
        assert (changed.status_code, problem_code(changed)) == (404, "review_not_found")
        removed = await delete(world, who, review["id"])
        assert (removed.status_code, problem_code(removed)) == (404, "review_not_found")
    anonymous = await world.http.patch(f"{API}/reviews/{review['id']}", json={"rating": 1})
    assert anonymous.status_code == 401
    assert (await world.http.delete(f"{API}/reviews/{review['id']}")).status_code == 401

    mine = await _mine(world, stay)
    assert (mine["rating"], mine["text"], mine["edited"]) == (3, "as written", False)
    assert await lodging_figures(world) == (3.0, 1)


async def test_my_review_of_a_reservation_is_mine_only(world: World, review_day: ReviewDay) -> None:
    stay = await completed_stay(world)
    review_day.today = stay.check_out
    path = f"{API}/reservations/{stay.reservation_id}/review"
    before = await world.http.get(path, headers=world.auth(stay.guest))
    assert (before.status_code, problem_code(before)) == (404, "review_not_found")

    review = await written(world, stay, rating=5)
    assert (await _mine(world, stay))["id"] == review["id"]
    for who in (world.guest(), world.host):
        response = await world.http.get(path, headers=world.auth(who))
        assert (response.status_code, problem_code(response)) == (404, "review_not_found")
    assert (await world.http.get(path)).status_code == 401


async def test_the_lodging_host_replies_replaces_and_removes_the_reply(
    world: World, review_day: ReviewDay
) -> None:
    stay, review = await _reviewed(world, review_day, rating=4)
    reply_path = f"{API}/reviews/{review['id']}/reply"

    first = await world.http.put(
        reply_path, json={"text": "Thank you!"}, headers=world.auth(world.host)
    )
    assert first.status_code == 200, first.text
    assert first.json()["reply"]["text"] == "Thank you!"
    (item,) = (await public_reviews(world, world.lodging_id))["items"]
    assert item["reply"]["text"] == "Thank you!"

    second = await world.http.put(
        reply_path, json={"text": "감사합니다, 또 오세요"}, headers=world.auth(world.host)
    )
    assert second.status_code == 200, second.text
    reply = second.json()["reply"]
    assert reply["text"] == "감사합니다, 또 오세요"
    assert reply["created_at"] == first.json()["reply"]["created_at"]
    assert reply["updated_at"] >= reply["created_at"]
    (item,) = (await public_reviews(world, world.lodging_id))["items"]
    assert item["reply"]["text"] == "감사합니다, 또 오세요"  # replaced, one reply
    # The reply is not the guest's edit.
    assert (item["edited"], item["rating"]) == (False, 4)
    assert (await _mine(world, stay))["reply"]["text"] == "감사합니다, 또 오세요"

    assert (await world.http.delete(reply_path, headers=world.auth(world.host))).status_code == 204
    (item,) = (await public_reviews(world, world.lodging_id))["items"]
    assert item["reply"] is None
    assert (await _mine(world, stay))["reply"] is None


async def test_nobody_but_the_lodging_host_replies(world: World, review_day: ReviewDay) -> None:
    stay, review = await _reviewed(world, review_day, rating=2)
    reply_path = f"{API}/reviews/{review['id']}/reply"
    other_host = world.principal(Role.HOST)
    await world.add_lodging(other_host)  # a host, but of another lodging

    put = await world.http.put(reply_path, json={"text": "hi"}, headers=world.auth(other_host))
    assert (put.status_code, problem_code(put)) == (404, "review_not_found")
    admin = world.principal(Role.ADMIN)  # the host role's routes admit admins: not their lodging
    put = await world.http.put(reply_path, json={"text": "hi"}, headers=world.auth(admin))
    assert (put.status_code, problem_code(put)) == (404, "review_not_found")
    for user in (stay.guest, world.guest()):
        put = await world.http.put(reply_path, json={"text": "hi"}, headers=world.auth(user))
        assert put.status_code == 403, put.text
    assert (await world.http.put(reply_path, json={"text": "hi"})).status_code == 401

    ours = await world.http.put(reply_path, json={"text": "ours"}, headers=world.auth(world.host))
    assert ours.status_code == 200, ours.text
    removed = await world.http.delete(reply_path, headers=world.auth(other_host))
    assert (removed.status_code, problem_code(removed)) == (404, "review_not_found")
    removed = await world.http.delete(reply_path, headers=world.auth(stay.guest))
    assert removed.status_code == 403
    (item,) = (await public_reviews(world, world.lodging_id))["items"]
    assert item["reply"]["text"] == "ours"

    # A reply needs words; a deleted review takes no reply.
    for text in ("", "   ", "x" * 2001):
        bad = await world.http.put(reply_path, json={"text": text}, headers=world.auth(world.host))
        assert (bad.status_code, problem_code(bad)) == (422, "validation_error"), text
    assert (await delete(world, stay.guest, review["id"])).status_code == 204
    late = await world.http.put(reply_path, json={"text": "?"}, headers=world.auth(world.host))
    assert (late.status_code, problem_code(late)) == (404, "review_not_found")


async def test_the_host_lists_reviews_of_their_lodgings_only(
    world: World, review_day: ReviewDay
) -> None:
    other_host = world.principal(Role.HOST)
    other_lodging, other_room_type = await world.add_lodging(other_host)
    ours = await completed_stay(world)
    theirs = await completed_stay(
        world, room_type_id=other_room_type, lodging_id=other_lodging, start=2
    )
    review_day.today = theirs.check_out
    our_review = await written(world, ours, rating=5)
    their_review = await written(world, theirs, rating=1)

    async def listed(host: Any) -> list[str]:
        response = await world.http.get(f"{API}/host/reviews", headers=world.auth(host))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed(world.host) == [our_review["id"]]
    assert await listed(other_host) == [their_review["id"]]
    assert (
        await world.http.get(f"{API}/host/reviews", headers=world.auth(ours.guest))
    ).status_code == 403


async def test_an_admin_hides_with_a_reason_and_shows_again(
    world: World, review_day: ReviewDay
) -> None:
    kept, hidden = await completed_stays(world, 2)
    review_day.today = kept.check_out
    await written(world, kept, rating=5)
    target = await written(world, hidden, rating=1, text="spam spam")
    assert await lodging_figures(world) == expected_figures([5, 1])
    path = f"{API}/admin/reviews/{target['id']}"

    # Not an admin: refused by role, whoever it is.
    for who in (hidden.guest, world.host, world.guest()):
        response = await world.http.patch(
            path, json={"hidden": True, "reason": "x"}, headers=world.auth(who)
        )
        assert response.status_code == 403, response.text
    admin = world.auth(world.principal(Role.ADMIN))
    listing = await world.http.get(f"{API}/admin/reviews", headers=world.auth(world.host))
    assert listing.status_code == 403, listing.text
    # Hiding says why (in at most 500 characters).
    for body in (
        {"hidden": True},
        {"hidden": True, "reason": ""},
        {"hidden": True, "reason": "  "},
        {"hidden": True, "reason": "x" * 501},
        {"reason": "no decision"},
    ):
        response = await world.http.patch(path, json=body, headers=admin)
        assert (response.status_code, problem_code(response)) == (422, "validation_error"), body
        if "hidden" in body:  # the refusal names the field to fill in (a form shows it there)
            assert [e["loc"][-1] for e in response.json()["errors"]] == ["reason"], body
    assert await lodging_figures(world) == expected_figures([5, 1])

    response = await moderate(world, target["id"], hidden=True, reason="advertising")
    assert response.status_code == 200, response.text
    assert (response.json()["hidden"], response.json()["hidden_reason"]) == (True, "advertising")
    public = await public_reviews(world, world.lodging_id)
    assert [item["id"] for item in public["items"]] != []
    assert target["id"] not in [item["id"] for item in public["items"]]
    assert public["total"] == 1
    assert await lodging_figures(world) == expected_figures([5])
    # Its author still sees it, marked; so does the host; the admin list filters on it.
    mine = await world.http.get(
        f"{API}/reservations/{hidden.reservation_id}/review", headers=world.auth(hidden.guest)
    )
    assert (mine.json()["hidden"], mine.json()["hidden_reason"]) == (True, "advertising")
    host_list = await world.http.get(f"{API}/host/reviews", headers=world.auth(world.host))
    assert {item["id"]: item["hidden"] for item in host_list.json()["items"]}[target["id"]] is True
    only_hidden = await world.http.get(
        f"{API}/admin/reviews", params={"hidden": "true"}, headers=admin
    )
    assert [item["id"] for item in only_hidden.json()["items"]] == [target["id"]]

    # Hiding again changes nothing in the figures.
    again = await moderate(world, target["id"], hidden=True, reason="still advertising")
    assert again.status_code == 200, again.text
    assert await lodging_figures(world) == expected_figures([5])

    shown = await moderate(world, target["id"], hidden=False)
    assert shown.status_code == 200, shown.text
    assert shown.json()["hidden"] is False
    # Shown again: nothing of the hiding is left on it (the log keeps the decisions).
    assert [shown.json()[k] for k in ("hidden_reason", "hidden_at", "hidden_by")] == [None] * 3
    assert (await public_reviews(world, world.lodging_id))["total"] == 2
    assert await lodging_figures(world) == expected_figures([5, 1])
    # Showing a shown review changes nothing either.
    assert (await moderate(world, target["id"], hidden=False)).status_code == 200
    assert await lodging_figures(world) == expected_figures([5, 1])


async def test_a_hidden_review_edited_by_its_author_counts_with_its_new_rating_once_shown(
    world: World, review_day: ReviewDay
) -> None:
    kept, hidden = await completed_stays(world, 2)
    review_day.today = kept.check_out
    await written(world, kept, rating=4)
    target = await written(world, hidden, rating=1)
    assert (await moderate(world, target["id"], hidden=True, reason="rude")).status_code == 200
    assert await lodging_figures(world) == expected_figures([4])

    changed = await edit(world, hidden.guest, target["id"], rating=5, text="calmer now")
    assert changed.status_code == 200, changed.text
    assert await lodging_figures(world) == expected_figures([4])  # still hidden: not counted

    assert (await moderate(world, target["id"], hidden=False)).status_code == 200
    assert await lodging_figures(world) == expected_figures([4, 5])

    # Hidden, then deleted by its author: shown again it cannot be, and it never counts again.
    assert (await moderate(world, target["id"], hidden=True, reason="rude")).status_code == 200
    assert (await delete(world, hidden.guest, target["id"])).status_code == 204
    assert await lodging_figures(world) == expected_figures([4])
    gone = await moderate(world, target["id"], hidden=False)
    assert (gone.status_code, problem_code(gone)) == (404, "review_not_found")
    assert await lodging_figures(world) == expected_figures([4])
