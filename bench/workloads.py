"""What ``make bench`` asks for: booking bodies, race bodies and search paths over the catalogue,
and the inventory check after the booking runs."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg  # type: ignore[import-untyped]

from bench.catalogue import CITIES, DISTRICTS, Catalogue, RoomTypeRow

RESERVATIONS_ROUTE = "/api/v1/reservations"
SEARCH_ROUTE = "/api/v1/lodgings"
SORTS = ("price", "-price", "rating", "reviews", "newest")


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def booked_room_types(catalogue: Catalogue, count: int, rng: random.Random) -> list[RoomTypeRow]:
    """The room types the booking run books: many, spread over every city."""
    return rng.sample(catalogue.room_types, k=min(count, len(catalogue.room_types)))


def stay_bodies(
    catalogue: Catalogue, room_types: list[RoomTypeRow], count: int, rng: random.Random
) -> list[str]:
    """Random 1-3 night stays over ``room_types`` and the whole calendar, 1 guest to capacity."""
    span = (catalogue.last_night - catalogue.first_night).days - 3
    bodies = []
    for _ in range(count):
        room_type = rng.choice(room_types)
        check_in = catalogue.first_night + timedelta(days=rng.randint(0, span))
        bodies.append(
            _stay(room_type, check_in, rng.randint(1, 3), rng.randint(1, room_type.capacity))
        )
    return bodies


def race_bodies(room_type: RoomTypeRow, check_in: date) -> list[str]:
    """The last-room race: every request wants the same 3 nights of one room type."""
    return [_stay(room_type, check_in, 3, 1)]


def _stay(room_type: RoomTypeRow, check_in: date, nights: int, guests: int) -> str:
    return json.dumps(
        {
            "room_type_id": str(room_type.id),
            "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(days=nights)).isoformat(),
            "guests": guests,
        },
        separators=(",", ":"),
    )


def search_paths(catalogue: Catalogue, count: int, rng: random.Random) -> list[str]:
    """Distinct searches spread over cities and districts (weighted like the catalogue: a city
    is asked for as often as it has lodgings), dates, stay lengths, party sizes and sorts; one
    in ten has no dates (the "from" price)."""
    names = [city for city, *_ in CITIES]
    weights = [share for _, share, *_ in CITIES]
    span = (catalogue.last_night - catalogue.first_night).days - 3
    seen: set[str] = set()
    paths: list[str] = []
    while len(paths) < count:
        city = rng.choices(names, weights)[0]
        region = city if rng.random() < 0.5 else f"{city} {rng.choice(DISTRICTS)}"
        query: dict[str, Any] = {"region": region, "guests": rng.randint(1, 4)}
        if rng.random() >= 0.1:
            check_in = catalogue.first_night + timedelta(days=rng.randint(0, span))
            query["check_in"] = check_in.isoformat()
            query["check_out"] = (check_in + timedelta(days=rng.randint(1, 3))).isoformat()
        query["sort"] = rng.choice(SORTS)
        path = f"{SEARCH_ROUTE}?{urlencode(query)}"
        if path not in seen:
            seen.add(path)
            paths.append(path)
    return paths


# The inventory as the nights see it against the inventory as the holds see it.
_OVERSOLD = "SELECT count(*) FROM {nights} WHERE held + sold > total"
_HELD_MISMATCH = """
WITH cover AS (
    SELECT h.room_type_id, d::date AS date, sum(h.rooms) AS rooms
    FROM {holds} h CROSS JOIN generate_series(h.check_in, h.check_out - 1, interval '1 day') d
    WHERE {held_holds}
    GROUP BY 1, 2
)
SELECT count(*) FROM {nights} n FULL JOIN cover c USING (room_type_id, date)
WHERE (n.held > 0 OR c.rooms IS NOT NULL) AND coalesce(n.held, -1) <> coalesce(c.rooms, 0)
"""
# Every reservation answered 201 (PENDING until paid) has its hold, on its room type and dates.
_RESERVATIONS_WITHOUT_HOLD = """
SELECT count(*) FROM reservation_reservations r
LEFT JOIN lodging_holds h
  ON h.reservation_id = r.id AND h.status IN ('HELD', 'SOLD') AND h.room_type_id = r.room_type_id
 AND h.check_in = r.check_in AND h.check_out = r.check_out
WHERE r.status IN ('PENDING', 'CONFIRMED') AND h.reservation_id IS NULL
"""


async def reservation_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reservation_reservations"))
    finally:
        await conn.close()


async def check_inventory(dsn: str, *, created: int, answered_201: int) -> dict[str, Any]:
    """After a booking run: no night oversold, every night's ``held`` equals the rooms of the
    HELD holds covering it, every PENDING or CONFIRMED reservation has its hold, and the run
    created exactly as many reservations as it answered 201."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        oversold = await conn.fetchval(_OVERSOLD.format(nights="lodging_nights"))
        held_mismatch = await conn.fetchval(
            _HELD_MISMATCH.format(
                holds="lodging_holds", nights="lodging_nights", held_holds="h.status = 'HELD'"
            )
        )
        without_hold = await conn.fetchval(_RESERVATIONS_WITHOUT_HOLD)
    finally:
        await conn.close()
    result = {
        "oversold_nights": oversold,
        "nights_whose_held_differs_from_their_holds": held_mismatch,
        "reservations_without_their_hold": without_hold,
        "reservations_created": created,
        "answered_201": answered_201,
    }
    result["ok"] = (
        oversold == 0 and held_mismatch == 0 and without_hold == 0 and created == answered_201
    )
    return result


async def check_raw_inventory(dsn: str) -> dict[str, Any]:
    """The same for the raw ceiling's scratch tables: the baseline must be correct too."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        oversold = await conn.fetchval(_OVERSOLD.format(nights="bench_raw_nights"))
        held_mismatch = await conn.fetchval(
            _HELD_MISMATCH.format(
                holds="bench_raw_holds", nights="bench_raw_nights", held_holds="true"
            )
        )
        holds = await conn.fetchval("SELECT count(*) FROM bench_raw_holds")
    finally:
        await conn.close()
    return {
        "oversold_nights": oversold,
        "nights_whose_held_differs_from_their_holds": held_mismatch,
        "holds": holds,
        "ok": oversold == 0 and held_mismatch == 0,
    }
