"""Hot reads are cached and invalidated by every change; a search page runs a bounded number of
SQL statements whatever the number of results."""

from __future__ import annotations

from datetime import date

import httpx

from tests.lodging.factories import (
    API,
    Actor,
    assert_problem,
    confirm_hold,
    count_statements,
    create_listing,
    create_room_type,
    day,
    hold_night,
    ids,
    install_statement_counter,
    month,
    put_calendar,
    release_hold,
    search_ok,
)


async def available_on(client: httpx.AsyncClient, lodging_id: str, night: date) -> int:
    calendar = await client.get(
        f"{API}/lodgings/{lodging_id}/calendar", params={"month": month(night)}
    )
    assert calendar.status_code == 200, calendar.text
    (room_type,) = calendar.json()["room_types"]
    (found,) = [d for d in room_type["days"] if d["date"] == night.isoformat()]
    available: int = found["available"]
    return available


async def test_every_hold_sale_and_release_shows_on_the_next_calendar_read(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """A lodging's calendar is what a guest picks nights from: a room held, sold or given back
    shows on the very next read, even when the calendar was cached just before (a guest who
    has just cancelled must see the night free again, not in up to a cache TTL)."""
    listing = await create_listing(app_client, host, total_rooms=2)
    install_statement_counter(app_client)
    night = day(6)
    assert await available_on(app_client, listing.id, night) == 2
    with count_statements() as cached:
        assert await available_on(app_client, listing.id, night) == 2
    assert cached == [], "the second read must come from the cache"

    reservation_id = await hold_night(app_client, listing.room_type_id, night)
    assert await available_on(app_client, listing.id, night) == 1
    await confirm_hold(app_client, reservation_id)
    assert await available_on(app_client, listing.id, night) == 1
    sold = await hold_night(app_client, listing.room_type_id, night, confirm=True)
    assert await available_on(app_client, listing.id, night) == 0
    await release_hold(app_client, sold)
    assert await available_on(app_client, listing.id, night) == 1
    await release_hold(app_client, reservation_id)
    assert await available_on(app_client, listing.id, night) == 2


async def test_a_booking_leaves_other_lodgings_calendars_cached(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    booked = await create_listing(app_client, host, name="Booked")
    other = await create_listing(app_client, host, name="Other")
    install_statement_counter(app_client)
    night = day(6)
    await available_on(app_client, other.id, night)
    await hold_night(app_client, booked.room_type_id, night)
    with count_statements() as after_the_hold:
        await available_on(app_client, other.id, night)
    assert after_the_hold == [], after_the_hold


async def test_price_change_is_visible_on_the_next_search(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, price=100_000)
    stay = {"check_in": day(5), "check_out": day(7), "guests": 2}

    first = await search_ok(app_client, **stay)
    assert first["items"][0]["total_price"] == 200_000
    assert (await search_ok(app_client, **stay))["items"][0]["total_price"] == 200_000  # cached
    undated = await search_ok(app_client)
    assert undated["items"][0]["min_night_price"] == 100_000

    changed = await put_calendar(
        app_client, host, listing.room_type_id, day(6), day(7), price=130_000
    )
    assert changed.status_code == 200, changed.text

    again = await search_ok(app_client, **stay)
    assert again["items"][0]["total_price"] == 230_000
    assert again["items"][0]["nights"][1] == {"date": day(6).isoformat(), "price": 130_000}

    lowered = await put_calendar(
        app_client, host, listing.room_type_id, day(1), day(41), price=90_000
    )
    assert lowered.status_code == 200
    assert (await search_ok(app_client))["items"][0]["min_night_price"] == 90_000


async def test_closing_a_night_is_visible_on_the_next_search_and_calendar(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host)
    stay = {"check_in": day(5), "check_out": day(8), "guests": 2}
    assert ids(await search_ok(app_client, **stay)) == [listing.id]
    calendar_url = f"{API}/lodgings/{listing.id}/calendar"
    before = (await app_client.get(calendar_url, params={"month": month(day(6))})).json()
    night = next(d for d in before["room_types"][0]["days"] if d["date"] == day(6).isoformat())
    assert night["closed"] is False

    closed = await put_calendar(app_client, host, listing.room_type_id, day(6), day(7), closed=True)
    assert closed.status_code == 200

    assert (await search_ok(app_client, **stay))["items"] == []
    after = (await app_client.get(calendar_url, params={"month": month(day(6))})).json()
    night = next(d for d in after["room_types"][0]["days"] if d["date"] == day(6).isoformat())
    assert night["closed"] is True

    reopened = await put_calendar(
        app_client, host, listing.room_type_id, day(6), day(7), closed=False
    )
    assert reopened.status_code == 200
    assert ids(await search_ok(app_client, **stay)) == [listing.id]


async def test_lodging_changes_are_visible_on_the_next_detail_and_search(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    listing = await create_listing(app_client, host, name="Before")
    detail_url = f"{API}/lodgings/{listing.id}"
    assert (await app_client.get(detail_url)).json()["name"] == "Before"
    assert (await search_ok(app_client, region="Seoul"))["items"][0]["name"] == "Before"
    assert ids(await search_ok(app_client, amenities="wifi")) == [listing.id]

    patched = await app_client.patch(
        f"{API}/host/lodgings/{listing.id}",
        json={"name": "After", "region": {"city": "Busan", "district": "Suyeong"}, "amenities": []},
        headers=host.headers,
    )
    assert patched.status_code == 200, patched.text

    assert (await app_client.get(detail_url)).json()["name"] == "After"
    assert (await search_ok(app_client, region="Seoul"))["items"] == []
    assert (await search_ok(app_client, region="Busan"))["items"][0]["name"] == "After"
    assert (await search_ok(app_client, amenities="wifi"))["items"] == []

    room_type = await create_room_type(app_client, host, listing.id, name="Annex")
    names = [rt["name"] for rt in (await app_client.get(detail_url)).json()["room_types"]]
    assert "Annex" in names
    renamed = await app_client.patch(
        f"{API}/host/room-types/{room_type['id']}", json={"name": "Annex 2"}, headers=host.headers
    )
    assert renamed.status_code == 200
    names = [rt["name"] for rt in (await app_client.get(detail_url)).json()["room_types"]]
    assert "Annex 2" in names

    # Room capacity decides who fits.
    stay = {"check_in": day(5), "check_out": day(7), "guests": 3}
    assert (await search_ok(app_client, **stay))["items"] == []
    patched = await app_client.patch(
        f"{API}/host/room-types/{listing.room_type_id}", json={"capacity": 3}, headers=host.headers
    )
    assert patched.status_code == 200
    assert ids(await search_ok(app_client, **stay)) == [listing.id]

    deleted = await app_client.delete(f"{API}/host/lodgings/{listing.id}", headers=host.headers)
    assert deleted.status_code == 204
    assert_problem(await app_client.get(detail_url), 404, "lodging_not_found")
    assert (await search_ok(app_client, region="Busan"))["items"] == []


async def test_search_page_runs_a_bounded_number_of_statements(
    app_client: httpx.AsyncClient, host: Actor, search_path: str
) -> None:
    seoul = [
        await create_listing(app_client, host, name=f"Seoul {i}", price=100_000 + i * 1000)
        for i in range(20)
    ]
    busan = [
        await create_listing(
            app_client,
            host,
            name=f"Busan {i}",
            region={"city": "Busan", "district": "Haeundae"},
            price=90_000,
        )
        for i in range(5)
    ]
    # A second room type on some lodgings, so per-room-type work would show too.
    for listing in seoul[:5]:
        extra = await create_room_type(app_client, host, listing.id, name="Extra")
        await put_calendar(app_client, host, extra["id"], day(1), day(20), price=500_000)
    install_statement_counter(app_client)
    stay = {"check_in": day(3), "check_out": day(10), "guests": 2, "size": 20}

    with count_statements() as big:
        dated = await search_ok(app_client, region="Seoul", sort="price", **stay)
    assert len(dated["items"]) == 20
    assert all(len(item["nights"]) == 7 for item in dated["items"])
    assert all(item["total_price"] == 7 * item["nights"][0]["price"] for item in dated["items"])
    with count_statements() as small:
        other = await search_ok(app_client, region="Busan", sort="price", **stay)
    assert len(other["items"]) == 5

    with count_statements() as undated:
        undated_page = await search_ok(app_client, region="Seoul", size=20)
    assert len(undated_page["items"]) == 20
    if search_path == "sql":
        assert len(big) >= 1, "the counter saw nothing: is the search reading the database?"
        assert len(big) <= 5, big
        assert len(big) == len(small), (big, small)
        assert 1 <= len(undated) <= 5, undated  # undated pages are bounded as well
    else:
        # The index reads only what changed since its last search: the set-up's lodgings (room
        # types with their lodgings, and their nights), then nothing.
        assert 1 <= len(big) <= 2, big
        assert small == [], small
        assert undated == [], undated

    # The same query again is answered from the cache.
    with count_statements() as cached:
        again = await search_ok(app_client, region="Seoul", sort="price", **stay)
    assert ids(again) == ids(dated)
    assert ids(dated) == [s.id for s in seoul]  # cheapest first
    assert cached == [], cached
    assert {s.id for s in busan} == set(ids(other))


async def test_detail_reads_are_cached(app_client: httpx.AsyncClient, host: Actor) -> None:
    listing = await create_listing(app_client, host)
    install_statement_counter(app_client)
    url = f"{API}/lodgings/{listing.id}"
    with count_statements() as first:
        assert (await app_client.get(url)).status_code == 200
    with count_statements() as second:
        assert (await app_client.get(url)).status_code == 200
    assert 1 <= len(first) <= 3, first
    assert second == [], second


async def test_a_warm_search_is_the_stored_page_byte_for_byte_in_any_parameter_order(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """Warm searches are answered before FastAPI's routing from the stored bytes (a direct
    route, one Redis round trip); they must be exactly what the full route answered."""
    await create_listing(app_client, host, name="Ordered", price=100_000)
    install_statement_counter(app_client)
    query = f"region=Seoul&check_in={day(3)}&check_out={day(5)}&guests=2&sort=price"
    reordered = f"sort=price&guests=2&check_out={day(5)}&check_in={day(3)}&region=Seoul"
    with count_statements() as cold:
        first = await app_client.get(f"{API}/lodgings?{query}")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert cold, "the first search must run SQL"
    with count_statements() as warm:
        second = await app_client.get(f"{API}/lodgings?{reordered}")
    assert warm == []
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"


async def test_refused_searches_are_never_stored_or_served_from_the_cache(
    app_client: httpx.AsyncClient,
) -> None:
    past = f"{API}/lodgings?check_in={day(-3)}&check_out={day(-1)}"
    malformed = f"{API}/lodgings?guests=zero"
    for _ in range(2):
        assert_problem(await app_client.get(past), 422)
        assert_problem(await app_client.get(malformed), 422)


async def test_a_cold_search_reads_repeated_names_as_fastapi_does(
    app_client: httpx.AsyncClient, host: Actor
) -> None:
    """Cold searches are validated before FastAPI's routing (``SearchParams``): a repeated
    name counts with its last value, as FastAPI reads it, and a value that does not validate
    still gets FastAPI's own 422 (its ``loc`` names the query parameter)."""
    await create_listing(app_client, host, capacity=2)
    stay = f"check_in={day(3)}&check_out={day(5)}"
    fits = await app_client.get(f"{API}/lodgings?{stay}&guests=4&guests=2")
    too_many = await app_client.get(f"{API}/lodgings?{stay}&guests=2&guests=4")
    assert fits.status_code == too_many.status_code == 200, (fits.text, too_many.text)
    assert len(fits.json()["items"]) == 1
    assert too_many.json()["items"] == []
    refused = await app_client.get(f"{API}/lodgings?{stay}&guests=")
    assert_problem(refused, 422, "validation_error")
    assert refused.json()["errors"][0]["loc"] == ["query", "guests"]
