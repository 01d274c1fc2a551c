"""Public search: availability of every night of the stay, prices for the stay, filters, sorting
and paging, and the public detail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from tests.lodging.factories import (
    API,
    Actor,
    assert_problem,
    create_listing,
    create_lodging,
    create_room_type,
    day,
    ids,
    last_day_of_month,
    nights,
    open_calendar,
    put_calendar,
    search_ok,
    set_inventory,
)


async def test_stay_price_charges_every_night_but_the_check_out_day(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, start=day(5), end=day(6), price=10_000)
    for offset, price in ((6, 20_000), (7, 40_000), (8, 80_000)):
        await open_calendar(
            app_client, host, listing.room_type_id, day(offset), day(offset + 1), price=price
        )

    page = await search_ok(app_client, check_in=day(5), check_out=day(8), guests=2)

    assert ids(page) == [listing.id]
    item = page["items"][0]
    assert item["room_type_id"] == listing.room_type_id
    assert item["nights"] == [
        {"date": day(5).isoformat(), "price": 10_000},
        {"date": day(6).isoformat(), "price": 20_000},
        {"date": day(7).isoformat(), "price": 40_000},
    ]
    assert item["total_price"] == 70_000


async def test_check_out_night_need_not_be_open(app_client: httpx.AsyncClient, host: Actor) -> None:
    # Nights [day 3, day 5) exist; day 5 does not exist, day 2 is closed.
    listing = await create_listing(app_client, host, start=day(2), end=day(5), price=30_000)
    await put_calendar(app_client, host, listing.room_type_id, day(2), day(3), closed=True)

    found = await search_ok(app_client, check_in=day(3), check_out=day(5), guests=1)
    assert ids(found) == [listing.id]
    assert found["items"][0]["total_price"] == 60_000

    # ...but a stay that includes the missing night is not possible.
    missing = await search_ok(app_client, check_in=day(3), check_out=day(6), guests=1)
    assert missing["items"] == []
    assert missing["total"] == 0


async def test_stay_crossing_a_month_boundary(app_client: httpx.AsyncClient, host: Actor) -> None:
    last = last_day_of_month(day(10))
    check_in, check_out = last - timedelta(days=1), last + timedelta(days=3)
    listing = await create_listing(
        app_client, host, start=check_in, end=last + timedelta(days=1), price=50_000
    )
    await open_calendar(
        app_client, host, listing.room_type_id, last + timedelta(days=1), check_out, price=60_000
    )

    page = await search_ok(app_client, check_in=check_in, check_out=check_out, guests=2)

    assert ids(page) == [listing.id]
    item = page["items"][0]
    assert [n["date"] for n in item["nights"]] == [
        d.isoformat() for d in nights(check_in, check_out)
    ]
    assert [n["price"] for n in item["nights"]] == [50_000, 50_000, 60_000, 60_000]
    assert item["total_price"] == 220_000


async def test_one_closed_night_in_the_middle_excludes_the_lodging(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    closed = await create_listing(app_client, host, name="Closed midweek", start=day(3), end=day(9))
    other = await create_listing(app_client, host, name="Always open", start=day(3), end=day(9))
    response = await put_calendar(
        app_client, host, closed.room_type_id, day(5), day(6), closed=True
    )
    assert response.status_code == 200, response.text

    across = await search_ok(app_client, check_in=day(3), check_out=day(8), guests=2)
    assert ids(across) == [other.id]
    assert across["total"] == 1
    before = await search_ok(app_client, check_in=day(3), check_out=day(5), guests=2)
    assert sorted(ids(before)) == sorted([closed.id, other.id])
    after = await search_ok(app_client, check_in=day(6), check_out=day(8), guests=2)
    assert sorted(ids(after)) == sorted([closed.id, other.id])


async def test_one_sold_out_night_excludes_the_lodging(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    sold_out = await create_listing(
        app_client, host, name="Sold out", start=day(3), end=day(9), total_rooms=2
    )
    partly = await create_listing(
        app_client, host, name="One left", start=day(3), end=day(9), total_rooms=2
    )
    await set_inventory(app_client, sold_out.room_type_id, day(6), held=1, sold=1)
    await set_inventory(app_client, partly.room_type_id, day(6), held=1, sold=0)

    page = await search_ok(app_client, check_in=day(4), check_out=day(8), guests=2)
    assert ids(page) == [partly.id]


async def test_a_night_with_zero_rooms_or_not_opened_excludes_the_lodging(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    no_rooms = await create_listing(app_client, host, start=day(3), end=day(9))
    await put_calendar(app_client, host, no_rooms.room_type_id, day(5), day(6), total_rooms=0)
    gap = await create_listing(app_client, host, start=day(3), end=day(5))
    await open_calendar(app_client, host, gap.room_type_id, day(6), day(9))

    page = await search_ok(app_client, check_in=day(4), check_out=day(7), guests=1)
    assert page["items"] == []
    before = await search_ok(app_client, check_in=day(3), check_out=day(5), guests=1)
    assert sorted(ids(before)) == sorted([no_rooms.id, gap.id])


async def test_guests_above_capacity_exclude_and_the_cheapest_fitting_room_is_quoted(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host, max_guests=6)
    small = await create_room_type(app_client, host, lodging["id"], name="Small", capacity=2)
    family = await create_room_type(app_client, host, lodging["id"], name="Family", capacity=4)
    await open_calendar(app_client, host, small["id"], day(3), day(9), price=50_000)
    await open_calendar(app_client, host, family["id"], day(3), day(9), price=90_000)
    stay = {"check_in": day(4), "check_out": day(6)}

    two = await search_ok(app_client, guests=2, **stay)
    assert ids(two) == [lodging["id"]]
    assert two["items"][0]["room_type_id"] == small["id"]
    assert two["items"][0]["room_type_name"] == "Small"
    assert two["items"][0]["total_price"] == 100_000

    four = await search_ok(app_client, guests=4, **stay)
    assert ids(four) == [lodging["id"]]
    assert four["items"][0]["room_type_id"] == family["id"]
    assert four["items"][0]["total_price"] == 180_000

    five = await search_ok(app_client, guests=5, **stay)
    assert five["items"] == []


async def test_cheapest_room_type_skips_one_that_is_sold_out(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    lodging = await create_lodging(app_client, host)
    cheap = await create_room_type(app_client, host, lodging["id"], name="Cheap", total_rooms=1)
    dear = await create_room_type(app_client, host, lodging["id"], name="Dear", total_rooms=1)
    await open_calendar(app_client, host, cheap["id"], day(3), day(9), price=40_000)
    await open_calendar(app_client, host, dear["id"], day(3), day(9), price=70_000)
    await set_inventory(app_client, cheap["id"], day(5), sold=1)

    page = await search_ok(app_client, check_in=day(4), check_out=day(7), guests=2)
    assert ids(page) == [lodging["id"]]
    assert page["items"][0]["room_type_id"] == dear["id"]
    assert page["items"][0]["total_price"] == 210_000


async def test_a_stay_spread_over_two_room_types_is_not_offered(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """Every night must be free in the same room type (guests do not change rooms mid-stay)."""
    lodging = await create_lodging(app_client, host)
    first = await create_room_type(app_client, host, lodging["id"], name="A", total_rooms=1)
    second = await create_room_type(app_client, host, lodging["id"], name="B", total_rooms=1)
    await open_calendar(app_client, host, first["id"], day(3), day(5))
    await open_calendar(app_client, host, second["id"], day(5), day(7))
    page = await search_ok(app_client, check_in=day(3), check_out=day(7), guests=1)
    assert page["items"] == []


async def test_min_and_max_stay_of_each_night(app_client: httpx.AsyncClient, host: Actor) -> None:
    listing = await create_listing(app_client, host, start=day(3), end=day(20))
    await put_calendar(app_client, host, listing.room_type_id, day(5), day(6), min_stay=3)
    await put_calendar(app_client, host, listing.room_type_id, day(12), day(13), max_stay=2)

    assert (await search_ok(app_client, check_in=day(5), check_out=day(7), guests=1))["items"] == []
    assert ids(await search_ok(app_client, check_in=day(5), check_out=day(8), guests=1)) == [
        listing.id
    ]
    # A stay arriving earlier also covers the min_stay night: 4 nights >= 3.
    assert ids(await search_ok(app_client, check_in=day(3), check_out=day(7), guests=1)) == [
        listing.id
    ]
    assert ids(await search_ok(app_client, check_in=day(11), check_out=day(13), guests=1)) == [
        listing.id
    ]
    assert (await search_ok(app_client, check_in=day(11), check_out=day(14), guests=1))[
        "items"
    ] == []


async def test_lodging_max_nights_excludes_longer_stays(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, start=day(3), end=day(20), max_nights=3)
    three = await search_ok(app_client, check_in=day(4), check_out=day(7), guests=1)
    assert ids(three) == [listing.id]
    four = await search_ok(app_client, check_in=day(4), check_out=day(8), guests=1)
    assert four["items"] == []


async def test_region_matches_city_or_district_case_insensitively(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    gangnam = await create_listing(
        app_client, host, region={"city": "Seoul", "district": "Gangnam"}
    )
    mapo = await create_listing(app_client, host, region={"city": "Seoul", "district": "Mapo"})
    busan = await create_listing(app_client, host, region={"city": "Busan", "district": "Haeundae"})

    assert sorted(ids(await search_ok(app_client, region="Seoul"))) == sorted([gangnam.id, mapo.id])
    assert sorted(ids(await search_ok(app_client, region="seoul"))) == sorted([gangnam.id, mapo.id])
    assert ids(await search_ok(app_client, region="Gangnam")) == [gangnam.id]
    assert ids(await search_ok(app_client, region="HAEUNDAE")) == [busan.id]
    assert ids(await search_ok(app_client, region="Busan")) == [busan.id]
    assert (await search_ok(app_client, region="Jeju"))["items"] == []
    # Exact match, not a substring.
    assert (await search_ok(app_client, region="Seo"))["items"] == []


async def test_text_query_matches_name_description_or_address(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    by_name = await create_listing(app_client, host, name="Ocean Breeze Pension", description="x")
    by_desc = await create_listing(
        app_client, host, name="Plain", description="Wake up to the OCEAN view"
    )
    by_address = await create_listing(
        app_client, host, name="Other", description="", address="1 Oceanside-ro"
    )
    await create_listing(
        app_client, host, name="Mountain Lodge", description="Pines", address="2 Hill-ro"
    )

    found = await search_ok(app_client, q="ocean")
    assert sorted(ids(found)) == sorted([by_name.id, by_desc.id, by_address.id])
    assert ids(await search_ok(app_client, q="BREEZE")) == [by_name.id]
    # Wildcard characters are literal.
    assert (await search_ok(app_client, q="%"))["items"] == []
    assert (await search_ok(app_client, q="_"))["items"] == []


async def test_amenities_filter_requires_all_of_them(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    both = await create_listing(app_client, host, amenities=["wifi", "parking", "pool"])
    wifi = await create_listing(app_client, host, amenities=["wifi"])
    await create_listing(app_client, host, amenities=[])

    assert sorted(ids(await search_ok(app_client, amenities="wifi"))) == sorted([both.id, wifi.id])
    assert ids(await search_ok(app_client, amenities="wifi,parking")) == [both.id]
    assert ids(await search_ok(app_client, amenities="parking,wifi,pool")) == [both.id]
    assert (await search_ok(app_client, amenities="wifi,sauna"))["items"] == []


async def test_price_range_applies_to_the_whole_stay(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    cheap = await create_listing(app_client, host, name="Cheap", price=100_000)
    dear = await create_listing(app_client, host, name="Dear", price=150_000)
    stay = {"check_in": day(5), "check_out": day(7), "guests": 2}  # 200k vs 300k

    assert ids(await search_ok(app_client, min_price=250_000, **stay)) == [dear.id]
    assert ids(await search_ok(app_client, max_price=250_000, **stay)) == [cheap.id]
    # Nightly prices are both under 160k, but the stays are not.
    assert (await search_ok(app_client, max_price=160_000, **stay))["items"] == []
    inclusive = await search_ok(app_client, min_price=200_000, max_price=300_000, **stay)
    assert sorted(ids(inclusive)) == sorted([cheap.id, dear.id])


async def test_without_dates_price_range_uses_the_lowest_open_nightly_price(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    cheap = await create_listing(app_client, host, name="Cheap", price=100_000)
    dear = await create_listing(app_client, host, name="Dear", price=150_000)
    # A closed cheaper night does not count.
    await put_calendar(app_client, host, dear.room_type_id, day(2), day(3), price=1, closed=True)

    page = await search_ok(app_client, sort="price")
    assert ids(page) == [cheap.id, dear.id]
    for item in page["items"]:
        assert item["total_price"] is None
        assert item["nights"] is None
    assert [item["min_night_price"] for item in page["items"]] == [100_000, 150_000]

    assert ids(await search_ok(app_client, min_price=120_000)) == [dear.id]
    assert ids(await search_ok(app_client, max_price=120_000)) == [cheap.id]


async def test_lodging_without_open_nights_is_not_listed(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listed = await create_listing(app_client, host)
    bare = await create_lodging(app_client, host, name="No calendar yet")
    await create_room_type(app_client, host, bare["id"])

    assert ids(await search_ok(app_client)) == [listed.id]
    stay = await search_ok(app_client, check_in=day(2), check_out=day(4))
    assert ids(stay) == [listed.id]


async def test_deleted_lodging_is_not_listed(app_client: httpx.AsyncClient, host: Actor) -> None:
    kept = await create_listing(app_client, host)
    dropped = await create_listing(app_client, host)
    response = await app_client.delete(f"{API}/host/lodgings/{dropped.id}", headers=host.headers)
    assert response.status_code == 204
    assert ids(await search_ok(app_client)) == [kept.id]
    assert ids(await search_ok(app_client, check_in=day(2), check_out=day(4))) == [kept.id]


async def test_deleted_room_type_is_not_offered(app_client: httpx.AsyncClient, host: Actor) -> None:
    listing = await create_listing(app_client, host)
    response = await app_client.delete(
        f"{API}/host/room-types/{listing.room_type_id}", headers=host.headers
    )
    assert response.status_code == 204
    assert (await search_ok(app_client, check_in=day(2), check_out=day(4)))["items"] == []


async def test_sort_by_price_and_newest(app_client: httpx.AsyncClient, host: Actor) -> None:
    mid = await create_listing(app_client, host, name="Mid", price=120_000)
    low = await create_listing(app_client, host, name="Low", price=80_000)
    high = await create_listing(app_client, host, name="High", price=200_000)
    stay = {"check_in": day(3), "check_out": day(5), "guests": 2}

    by_price = await search_ok(app_client, sort="price", **stay)
    assert ids(by_price) == [low.id, mid.id, high.id]
    assert [i["total_price"] for i in by_price["items"]] == [160_000, 240_000, 400_000]
    assert ids(await search_ok(app_client, sort="-price", **stay)) == [high.id, mid.id, low.id]
    assert ids(await search_ok(app_client, sort="newest", **stay)) == [high.id, low.id, mid.id]
    assert ids(await search_ok(app_client, sort="newest")) == [high.id, low.id, mid.id]
    assert ids(await search_ok(app_client, sort="price")) == [low.id, mid.id, high.id]
    for sort in ("rating", "reviews"):
        page = await search_ok(app_client, sort=sort, **stay)
        assert sorted(ids(page)) == sorted([low.id, mid.id, high.id])


async def _page_through(client: httpx.AsyncClient, size: int, **params: Any) -> list[str]:
    seen: list[str] = []
    page_no = 1
    while True:
        page = await search_ok(client, page=page_no, size=size, **params)
        assert page["page"] == page_no
        assert page["size"] == size
        assert page["total"] == 7
        if not page["items"]:
            break
        assert len(page["items"]) <= size
        seen.extend(ids(page))
        page_no += 1
    assert page_no == 4  # 3 + 3 + 1, then an empty page
    return seen


async def test_paging_is_consistent_without_duplicates(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    # Equal prices: the sort needs a tie-breaker for pages not to overlap.
    created = [
        (await create_listing(app_client, host, name=f"Same {i}", price=100_000)).id
        for i in range(7)
    ]
    stay = {"check_in": day(3), "check_out": day(5), "guests": 2}
    for params in (
        {"sort": "price", **stay},
        {"sort": "-price", **stay},
        {"sort": "newest", **stay},
        {"sort": "rating"},
        {"sort": "reviews", **stay},
        {},
    ):
        seen = await _page_through(app_client, 3, **params)
        assert len(seen) == len(set(seen)) == 7, params
        assert set(seen) == set(created), params


async def test_public_detail_with_room_types(app_client: httpx.AsyncClient, host: Actor) -> None:
    listing = await create_listing(app_client, host, name="Detail House")
    suite = await create_room_type(app_client, host, listing.id, name="Suite", capacity=4)

    response = await app_client.get(f"{API}/lodgings/{listing.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == listing.id
    assert body["name"] == "Detail House"
    assert body["host_id"] == host.id
    assert body["cancellation_policy"] == listing.lodging["cancellation_policy"]
    room_types = {rt["id"]: rt for rt in body["room_types"]}
    assert set(room_types) == {listing.room_type_id, suite["id"]}
    assert room_types[suite["id"]] == {
        "id": suite["id"],
        "lodging_id": listing.id,
        "name": "Suite",
        "capacity": 4,
        "total_rooms": 3,
    }


async def test_public_detail_of_unknown_or_malformed_id_is_404(
    app_client: httpx.AsyncClient,
) -> None:
    for lodging_id in ("00000000-0000-0000-0000-000000000042", "not-a-uuid", "1"):
        response = await app_client.get(f"{API}/lodgings/{lodging_id}")
        assert_problem(response, 404, "lodging_not_found")


async def test_totals_and_pages_count_only_available_lodgings(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    open_ = [await create_listing(app_client, host, name=f"Open {i}") for i in range(3)]
    for i in range(3):
        closed = await create_listing(app_client, host, name=f"Closed {i}")
        await put_calendar(app_client, host, closed.room_type_id, day(4), day(5), closed=True)
    stay = {"check_in": day(3), "check_out": day(6), "guests": 2, "size": 2}

    first = await search_ok(app_client, page=1, **stay)
    second = await search_ok(app_client, page=2, **stay)
    third = await search_ok(app_client, page=3, **stay)
    assert (first["total"], second["total"], third["total"]) == (3, 3, 3)
    assert (len(first["items"]), len(second["items"]), third["items"]) == (2, 1, [])
    assert sorted(ids(first) + ids(second)) == sorted(listing.id for listing in open_)

    priced = await search_ok(app_client, max_price=1, **stay)
    assert (priced["total"], priced["items"]) == (0, [])


async def test_text_query_folds_case_beyond_ascii(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, name="Maison Étoile", description="")
    korean = await create_listing(app_client, host, name="서울 한옥 스테이", description="")
    assert ids(await search_ok(app_client, q="한옥")) == [korean.id]
    assert ids(await search_ok(app_client, q="Étoile")) == [listing.id]
    assert ids(await search_ok(app_client, q="ÉTOILE")) == [listing.id]
    assert ids(await search_ok(app_client, q="étoile")) == [listing.id]


async def test_sort_by_rating_and_review_count(app_client: httpx.AsyncClient, host: Actor) -> None:
    """Ratings come from the review context; they are written straight into the lodging row here
    (test-only) to check the ordering: best first, unrated last."""
    unrated = await create_listing(app_client, host, name="Unrated")
    good = await create_listing(app_client, host, name="Good")
    best = await create_listing(app_client, host, name="Best")
    await _set_rating(app_client, good.id, rating=4.2, reviews=50)
    await _set_rating(app_client, best.id, rating=4.9, reviews=10)

    by_rating = await search_ok(app_client, sort="rating")
    assert ids(by_rating) == [best.id, good.id, unrated.id]
    assert [i["rating"] for i in by_rating["items"]] == [4.9, 4.2, None]
    assert [i["review_count"] for i in by_rating["items"]] == [10, 50, 0]
    by_reviews = await search_ok(app_client, sort="reviews", check_in=day(3), check_out=day(5))
    assert ids(by_reviews) == [good.id, best.id, unrated.id]
    detail = await app_client.get(f"{API}/lodgings/{best.id}")
    assert (detail.json()["rating"], detail.json()["review_count"]) == (4.9, 10)


async def _set_rating(
    client: httpx.AsyncClient, lodging_id: str, *, rating: float, reviews: int
) -> None:
    from sqlalchemy import update

    from haot.lodging.models import Lodging

    engine = client.app.state.platform.databases.engine_for("lodging")  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(
            update(Lodging)
            .where(Lodging.id == uuid.UUID(lodging_id))
            .values(rating_avg=rating, review_count=reviews, rating_sum=round(rating * reviews))
        )
