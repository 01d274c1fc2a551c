"""Demo lodgings for ``make run``: 60 lodgings over five regions with 90 days of calendar, created
through the lodging service as their hosts."""

from __future__ import annotations

import random
from datetime import timedelta

from haot.lodging.schemas import CalendarUpdate, LodgingCreate, Region, RoomTypeCreate
from haot.lodging.service import LodgingService
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow

REGIONS: list[tuple[str, list[tuple[str, float, float]]]] = [
    (
        "Seoul",
        [
            ("Gangnam", 37.498, 127.028),
            ("Jongno", 37.573, 126.979),
            ("Mapo", 37.556, 126.923),
            ("Yongsan", 37.532, 126.990),
        ],
    ),
    (
        "Busan",
        [("Haeundae", 35.163, 129.163), ("Suyeong", 35.153, 129.118), ("Jung-gu", 35.106, 129.032)],
    ),
    ("Jeju", [("Jeju-si", 33.499, 126.531), ("Seogwipo", 33.253, 126.560)]),
    ("Gangwon", [("Gangneung", 37.751, 128.876), ("Sokcho", 38.207, 128.592)]),
    ("Gyeongju", [("Hwangnam", 35.836, 129.219)]),
]
KINDS = ["Hotel", "Guesthouse", "Hanok Stay", "Resort", "Pension", "Residence"]
ADJECTIVES = [
    "Blue",
    "Quiet",
    "Pine",
    "Harbor",
    "Maple",
    "Lantern",
    "Stone",
    "Moon",
    "Cedar",
    "Sunrise",
]
AMENITIES = [
    "wifi",
    "parking",
    "pool",
    "breakfast",
    "kitchen",
    "ocean-view",
    "spa",
    "pet-friendly",
    "air-conditioning",
    "washer",
]
ROOM_TYPES = [
    ("Standard Double", 2, 5, 80_000),
    ("Twin", 2, 4, 90_000),
    ("Family Suite", 4, 2, 180_000),
    ("Ondol Room", 3, 3, 110_000),
]
LODGINGS = 60
CALENDAR_DAYS = 90


async def seed_lodgings(lodgings: LodgingService, hosts: list[Principal]) -> int:
    """Creates the demo lodgings unless the first host already has some (idempotent enough for
    a demo: a partly seeded database is topped up on the next run only if empty)."""
    from haot.platform.web import PageParams

    existing = await lodgings.list_own(hosts[0], PageParams(page=1, size=1))
    if existing.total:
        return 0
    rng = random.Random(20261125)  # noqa: S311 (same demo on every machine; not security)
    today = seoul_today()
    places = [
        (city, district, lat, lng)
        for city, districts in REGIONS
        for district, lat, lng in districts
    ]
    for index in range(LODGINGS):
        city, district, lat, lng = places[index % len(places)]
        host = hosts[index % len(hosts)]
        kind = KINDS[index % len(KINDS)]
        name = f"{ADJECTIVES[index % len(ADJECTIVES)]} {district} {kind}"
        lodging = await lodgings.create(
            host,
            LodgingCreate(
                name=name,
                description=f"A {kind.lower()} in {district}, {city}.",
                address=f"{rng.randint(1, 300)} {district}-ro, {city}",
                region=Region(city=city, district=district),
                latitude=round(lat + rng.uniform(-0.02, 0.02), 5),
                longitude=round(lng + rng.uniform(-0.02, 0.02), 5),
                amenities=rng.sample(AMENITIES, k=rng.randint(2, 6)),
                image_urls=[f"https://picsum.photos/seed/haot{index}/800/600"],
                max_guests=4,
            ),
        )
        scale = rng.uniform(0.8, 1.8)
        for rt_name, capacity, rooms, base in rng.sample(ROOM_TYPES, k=rng.randint(1, 3)):
            room_type = await lodgings.add_room_type(
                host, lodging.id, RoomTypeCreate(name=rt_name, capacity=capacity, total_rooms=rooms)
            )
            price = int(base * scale) // 1000 * 1000
            await lodgings.update_calendar(
                host,
                room_type.id,
                CalendarUpdate(
                    start=today,
                    end=today + timedelta(days=CALENDAR_DAYS),
                    price=price,
                    weekend_price=int(price * 1.3) // 1000 * 1000,
                ),
            )
    return LODGINGS


def principal_of(user_id: object, role: Role) -> Principal:
    import uuid

    assert isinstance(user_id, uuid.UUID)
    return Principal(user_id=user_id, role=role, issued_at=utcnow())
