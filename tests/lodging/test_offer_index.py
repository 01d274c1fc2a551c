"""The offer index answers every search exactly as the SQL statements do, and learns of changes
from the feed before the next search; on both database engines.

The catalogue is random, with the awkward cases a sort must break the same way: equal prices,
equal ratings and review counts, lodgings created at the same instant, closed nights, full nights,
stay-length bounds, several room types per lodging, deleted lodgings and room types.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from haot.lodging.changes import ChangeFeed
from haot.lodging.inventory import SoldOut
from haot.lodging.models import Lodging, Night, RoomType
from haot.lodging.offers import OfferIndex
from haot.lodging.search import FROM_PRICE_HORIZON_DAYS, LodgingSearch, SearchQuery
from haot.platform.clock import seoul_today

CITIES = {"Seoul": ["Gangnam", "Mapo"], "Busan": ["Haeundae", "Suyeong"], "Jeju": ["Jeju-si"]}


def _platform(client: httpx.AsyncClient) -> Any:
    return client.app.state.platform  # type: ignore[attr-defined]


async def _random_catalogue(client: httpx.AsyncClient, rng: random.Random) -> list[uuid.UUID]:
    """Rows straight into the lodging tables (the service would take minutes for this many)."""
    platform = _platform(client)
    today = seoul_today()
    instants = [datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(seconds=s) for s in range(5)]
    room_type_ids = []
    async with platform.uow_factory("lodging")() as uow:
        for index in range(45):
            city = rng.choice(list(CITIES))
            district = rng.choice(CITIES[city])
            lodging_id = uuid.uuid4()
            reviews = rng.choice([0, 0, 3, 10])
            uow.session.add(
                Lodging(
                    id=lodging_id,
                    host_id=uuid.uuid4(),
                    name=f"Lodging {index}",
                    description="",
                    address=f"{index} {district}-ro",
                    city=city,
                    district=district,
                    city_key=city.lower(),
                    district_key=district.lower(),
                    search_text=f"lodging {index}",
                    latitude=37.0,
                    longitude=127.0,
                    amenities=["wifi"],
                    image_urls=[],
                    max_guests=rng.choice([2, 4, 6]),
                    check_in_time=time(15),
                    check_out_time=time(11),
                    max_nights=rng.choice([3, 30]),
                    cancellation_policy=[{"days_before": 0, "refund_percent": 0}],
                    rating_sum=0,
                    review_count=reviews,
                    rating_avg=rng.choice([4.5, 3.0, 4.5]) if reviews else None,
                    created_at=rng.choice(instants),
                    updated_at=instants[0],
                    deleted_at=instants[0] if index % 15 == 7 else None,
                )
            )
            for number in range(rng.randint(1, 3)):
                room_type_id = uuid.uuid4()
                room_type_ids.append(room_type_id)
                uow.session.add(
                    RoomType(
                        id=room_type_id,
                        lodging_id=lodging_id,
                        name=f"Room {number}",
                        capacity=rng.choice([1, 2, 4]),
                        total_rooms=2,
                        created_at=instants[0],
                        deleted_at=instants[0] if rng.random() < 0.05 else None,
                    )
                )
                base = rng.choice([50_000, 80_000, 80_000, 120_000])
                for offset in range(rng.choice([20, 40, 70])):
                    if rng.random() < 0.05:
                        continue  # a night never opened
                    total = rng.choice([2, 2, 2, 1, 0])
                    held = rng.randint(0, total)
                    uow.session.add(
                        Night(
                            room_type_id=room_type_id,
                            date=today + timedelta(days=offset),
                            lodging_id=lodging_id,
                            price=base + rng.choice([0, 0, 10_000, 25_000]),
                            total=total,
                            held=held,
                            sold=rng.randint(0, total - held),
                            closed=rng.random() < 0.05,
                            min_stay=rng.choice([1, 1, 1, 2]),
                            max_stay=rng.choice([30, 30, 2]),
                        )
                    )
        await uow.commit()
    return room_type_ids


def _random_query(rng: random.Random, today: date) -> SearchQuery:
    regions = [None, "seoul", "Busan", " jeju ", "gangnam", "mapo", "nowhere", "  "]
    dated = rng.random() < 0.7
    check_in = today + timedelta(days=rng.randint(0, 30))
    return SearchQuery(
        region=rng.choice(regions),
        check_in=check_in if dated else None,
        check_out=check_in + timedelta(days=rng.randint(1, 4)) if dated else None,
        guests=rng.randint(1, 5),
        min_price=rng.choice([None, None, 100_000]),
        max_price=rng.choice([None, None, 250_000]),
        sort=rng.choice(["price", "-price", "rating", "reviews", "newest"]),
        page=rng.choice([1, 1, 2]),
        size=rng.choice([5, 20]),
    )


async def test_the_index_answers_every_search_as_sql_does(app_client: httpx.AsyncClient) -> None:
    rng = random.Random(14)
    await _random_catalogue(app_client, rng)
    search: LodgingSearch = _platform(app_client).services["lodging.search"]
    offers = search._offers
    assert offers is not None
    await offers.load()
    today = seoul_today()
    assert offers.covers(today, today + timedelta(days=3), today)
    nonempty = 0
    for _ in range(250):
        query = _random_query(rng, today)
        from_sql = await search._search_in_sql(query, today)
        # The very text: the index serialises its page itself, without the models.
        assert _page_of(query, offers) == from_sql.model_dump_json(), query
        nonempty += bool(from_sql.items)
    assert nonempty > 40  # the queries found things: the comparison means something


def _page_of(query: SearchQuery, offers: OfferIndex) -> str:
    from haot.lodging.search import _page_of_offers

    return _page_of_offers(query, offers)


async def test_a_change_is_in_the_next_search_of_another_process(
    app_client: httpx.AsyncClient,
) -> None:
    """Two indexes on one database and feed: what one process writes, the other's next search
    sees (a hold, a price change, a deleted room type), without a full reload."""
    rng = random.Random(7)
    room_type_ids = await _random_catalogue(app_client, rng)
    platform = _platform(app_client)
    search: LodgingSearch = platform.services["lodging.search"]
    elsewhere = OfferIndex(uow=platform.uow_factory("lodging"), feed=ChangeFeed(platform.redis))
    await elsewhere.load()
    today = seoul_today()
    loads = 0
    original = elsewhere._load_all

    async def counted(day: date) -> None:
        nonlocal loads
        loads += 1
        await original(day)

    elsewhere._load_all = counted  # type: ignore[method-assign]

    async def agree() -> None:
        await elsewhere.catch_up()
        for _ in range(40):
            query = _random_query(rng, today)
            assert (
                _page_of(query, elsewhere)
                == (await search._search_in_sql(query, today)).model_dump_json()
            ), query

    inventory = platform.services["lodging.client"]
    lodging_service = platform.services["lodging"]
    # Sell out the first nights of every room type the first page offers: the page must change.
    stay = SearchQuery(check_in=today, check_out=today + timedelta(days=2), sort="price")
    before = await search._search_in_sql(stay, today)
    assert before.items
    for item in before.items:
        for _ in range(3):
            try:
                await inventory.hold(
                    uuid.uuid4(), item.room_type_id, stay.check_in, stay.check_out, 1
                )
            except SoldOut:
                break
    after = await search._search_in_sql(stay, today)
    assert {i.id for i in after.items}.isdisjoint({i.id for i in before.items[:3]})
    await agree()
    assert _page_of(stay, elsewhere) == after.model_dump_json()
    async with platform.uow_factory("lodging")() as uow:
        await uow.session.execute(
            Night.__table__.update()
            .where(Night.room_type_id.in_(room_type_ids[:8]))
            .values(price=Night.price + 7_000)
        )
        await uow.commit()
    lodging_ids = {
        row.lodging_id
        for row in (
            await _rows_of(
                platform, RoomType.__table__.select().where(RoomType.id.in_(room_type_ids[:8]))
            )
        )
    }
    for lodging_id in lodging_ids:
        await lodging_service._cache.invalidate(lodging_id)  # what the service does after commit
    await agree()
    assert loads == 0  # the changes came through the feed, not a reload


async def _rows_of(platform: Any, statement: Any) -> list[Any]:
    async with platform.uow_factory("lodging")() as uow:
        return list((await uow.session.execute(statement)).all())


@pytest.mark.parametrize("days", [FROM_PRICE_HORIZON_DAYS])
async def test_dates_past_the_window_go_to_sql(app_client: httpx.AsyncClient, days: int) -> None:
    platform = _platform(app_client)
    offers = OfferIndex(
        uow=platform.uow_factory("lodging"), feed=ChangeFeed(platform.redis), window_days=days
    )
    await offers.load()
    today = seoul_today()
    assert offers.covers(None, None, today)
    assert offers.covers(today, today + timedelta(days=days), today)
    assert not offers.covers(today, today + timedelta(days=days + 1), today)
    assert not offers.covers(None, None, today + timedelta(days=1))  # a new day: reload first
