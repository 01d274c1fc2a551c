"""The bench's catalogue: 10,000 lodgings x 365 nights in PostgreSQL, bulk-loaded.

Through the service layer this would take most of an hour (one transaction per lodging and per
calendar range), so rows go in by COPY and one ``INSERT ... SELECT generate_series`` for the
nights. They obey the same rules as the service's: every lodging is validated by the service's own
input model (``LodgingCreate``, ``RoomTypeCreate``), its derived columns (region keys, search text,
sorted amenities and policy) come from the service's own function, weekend prices from the
domain's weekend nights, and the table constraints (``held + sold <= total`` and the rest) are
checked by PostgreSQL on every row.

Cities are weighted like a real catalogue: Seoul holds 3,000 lodgings, Busan and Jeju 1,200 each,
13 more cities the rest; each city has 8 districts. 1-3 room types per lodging.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]

from haot.lodging.domain import WEEKEND_NIGHTS
from haot.lodging.models import Lodging
from haot.lodging.schemas import LodgingCreate, Region, RoomTypeCreate

# The service's own derivation of region keys and search text (see the module docstring).
from haot.lodging.service import _apply_lodging_fields
from haot.seed_lodgings import ADJECTIVES, AMENITIES, KINDS, ROOM_TYPES

CITIES: list[tuple[str, int, float, float]] = [
    ("Seoul", 3000, 37.55, 126.99),
    ("Busan", 1200, 35.16, 129.06),
    ("Jeju", 1200, 33.40, 126.55),
    ("Incheon", 500, 37.46, 126.70),
    ("Gangneung", 450, 37.75, 128.88),
    ("Gyeongju", 450, 35.84, 129.21),
    ("Sokcho", 400, 38.20, 128.59),
    ("Yeosu", 400, 34.76, 127.66),
    ("Jeonju", 350, 35.82, 127.15),
    ("Daegu", 350, 35.87, 128.60),
    ("Daejeon", 300, 36.35, 127.38),
    ("Gwangju", 300, 35.16, 126.85),
    ("Suwon", 300, 37.26, 127.03),
    ("Tongyeong", 250, 34.85, 128.43),
    ("Andong", 250, 36.57, 128.73),
    ("Pohang", 250, 36.02, 129.34),
]
DISTRICTS = ["Central", "Harbor", "Old Town", "Station", "Riverside", "Hills", "Market", "Park"]


@dataclass(frozen=True)
class RoomTypeRow:
    id: uuid.UUID
    lodging_id: uuid.UUID
    city: str
    district: str
    capacity: int
    total_rooms: int


@dataclass
class Catalogue:
    lodgings: int
    room_types: list[RoomTypeRow]
    nights: int
    first_night: date
    last_night: date
    seconds: float

    @property
    def regions(self) -> list[str]:
        return [city for city, *_ in CITIES]

    def districts(self) -> list[str]:
        return [f"{city} {district}" for city, *_ in CITIES for district in DISTRICTS]


def _lodging_rows(
    rng: random.Random, count: int, now: datetime
) -> tuple[list[Lodging], list[RoomTypeRow], list[tuple[uuid.UUID, str, int, int]]]:
    """Lodgings, their room types, and (room type, name, base price, weekend price)."""
    weights = [share for _, share, _, _ in CITIES]
    scale = count / sum(weights)
    places = [
        (city, lat, lng) for city, share, lat, lng in CITIES for _ in range(round(share * scale))
    ]
    while len(places) < count:
        places.append(places[len(places) % len(CITIES)])
    lodgings: list[Lodging] = []
    room_types: list[RoomTypeRow] = []
    prices: list[tuple[uuid.UUID, str, int, int]] = []
    hosts = [uuid.uuid4() for _ in range(500)]
    for index, (city, lat, lng) in enumerate(places[:count]):
        district = DISTRICTS[index % len(DISTRICTS)]
        kind = KINDS[index % len(KINDS)]
        data = LodgingCreate(
            name=f"{ADJECTIVES[index % len(ADJECTIVES)]} {district} {kind} {index}",
            description=f"A {kind.lower()} in {district}, {city}.",
            address=f"{rng.randint(1, 300)} {district}-ro, {city}",
            region=Region(city=city, district=f"{city} {district}"),
            latitude=round(lat + rng.uniform(-0.05, 0.05), 5),
            longitude=round(lng + rng.uniform(-0.05, 0.05), 5),
            amenities=rng.sample(AMENITIES, k=rng.randint(2, 6)),
            image_urls=[f"https://picsum.photos/seed/bench{index}/800/600"],
            max_guests=4,
        )
        lodging = Lodging(
            id=uuid.uuid4(),
            host_id=hosts[index % len(hosts)],
            rating_sum=0,
            review_count=0,
            rating_avg=None,
            created_at=now,
            updated_at=now,
        )
        _apply_lodging_fields(lodging, data.model_dump(mode="python"))
        lodgings.append(lodging)
        price_scale = rng.uniform(0.6, 2.2)
        for name, capacity, rooms, base in rng.sample(ROOM_TYPES, k=rng.randint(1, 3)):
            spec = RoomTypeCreate(name=name, capacity=capacity, total_rooms=rooms)
            row = RoomTypeRow(
                uuid.uuid4(), lodging.id, city, district, spec.capacity, spec.total_rooms
            )
            room_types.append(row)
            price = int(base * price_scale) // 1000 * 1000
            prices.append((row.id, spec.name, price, int(price * 1.3) // 1000 * 1000))
    return lodgings, room_types, prices


async def load(dsn: str, *, lodgings: int, nights: int, first_night: date) -> Catalogue:
    started = time.monotonic()
    rng = random.Random(20261203)  # noqa: S311 (a reproducible catalogue, not security)
    now = datetime.now(UTC)
    rows, room_types, prices = _lodging_rows(rng, lodgings, now)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "lodging_lodgings",
                columns=[
                    "id",
                    "host_id",
                    "name",
                    "description",
                    "address",
                    "city",
                    "district",
                    "city_key",
                    "district_key",
                    "search_text",
                    "latitude",
                    "longitude",
                    "amenities",
                    "image_urls",
                    "max_guests",
                    "check_in_time",
                    "check_out_time",
                    "max_nights",
                    "cancellation_policy",
                    "rating_sum",
                    "review_count",
                    "rating_avg",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                ],
                records=[
                    (
                        r.id,
                        r.host_id,
                        r.name,
                        r.description,
                        r.address,
                        r.city,
                        r.district,
                        r.city_key,
                        r.district_key,
                        r.search_text,
                        r.latitude,
                        r.longitude,
                        json.dumps(r.amenities),
                        json.dumps(r.image_urls),
                        r.max_guests,
                        r.check_in_time,
                        r.check_out_time,
                        r.max_nights,
                        json.dumps(r.cancellation_policy),
                        0,
                        0,
                        None,
                        now,
                        now,
                        None,
                    )
                    for r in rows
                ],
            )
            await conn.copy_records_to_table(
                "lodging_amenities",
                columns=["lodging_id", "amenity"],
                records=[(r.id, a) for r in rows for a in r.amenities],
            )
            names = {rt_id: name for rt_id, name, _, _ in prices}
            await conn.copy_records_to_table(
                "lodging_room_types",
                columns=["id", "lodging_id", "name", "capacity", "total_rooms", "created_at"],
                records=[
                    (rt.id, rt.lodging_id, names[rt.id], rt.capacity, rt.total_rooms, now)
                    for rt in room_types
                ],
            )
            await conn.execute(
                "CREATE TEMP TABLE bench_prices (room_type_id uuid, price int, weekend int)"
                " ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                "bench_prices", records=[(rt_id, p, w) for rt_id, _, p, w in prices]
            )
            # Indexes are built once after the rows rather than row by row (4x faster); the
            # same definitions, read back from the catalogue, so the schema stays the migrated one.
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'lodging_nights'"
                " AND indexname <> 'pk_lodging_nights'"
            )
            await conn.execute("ALTER TABLE lodging_nights DROP CONSTRAINT pk_lodging_nights")
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            # Python's weekday() (Monday 0) is ISO day of week - 1.
            await conn.execute(
                """
                INSERT INTO lodging_nights
                    (room_type_id, date, lodging_id, price, total, held, sold, closed,
                     min_stay, max_stay)
                SELECT rt.id, d::date, rt.lodging_id,
                       CASE WHEN extract(isodow FROM d)::int - 1 = ANY($3::int[])
                            THEN p.weekend ELSE p.price END,
                       rt.total_rooms, 0, 0, false, 1, 30
                FROM lodging_room_types rt
                JOIN bench_prices p ON p.room_type_id = rt.id
                CROSS JOIN generate_series($1::date, $2::date, interval '1 day') AS d
                """,
                first_night,
                first_night + timedelta(days=nights - 1),
                sorted(WEEKEND_NIGHTS),
            )
            await conn.execute(
                "ALTER TABLE lodging_nights ADD CONSTRAINT pk_lodging_nights"
                " PRIMARY KEY (room_type_id, date)"
            )
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE lodging_lodgings, lodging_room_types, lodging_nights")
    finally:
        await conn.close()
    return Catalogue(
        lodgings=len(rows),
        room_types=room_types,
        nights=len(room_types) * nights,
        first_night=first_night,
        last_night=first_night + timedelta(days=nights - 1),
        seconds=round(time.monotonic() - started, 1),
    )
