"""The offer index: every room type's price and free rooms per night, in memory, for search.

A search over a city reads every candidate room type's nights of the stay; in PostgreSQL that is
a join and an aggregate over thousands of rows per query (20-70 ms at 10,000 lodgings, seconds
for an undated "from" price). Here it is a slice of a few arrays and a minimum: the index holds,
per room type (a row) and per night from the day it was loaded (a column), the price, the free
rooms (``-1``: no night, ``0``: closed or full) and the stay-length bounds, with the lodging
attributes search filters and sorts by. ``search`` answers the same question as the SQL
statements of ``search.py``, with the same order; a differential test holds them to that.

Freshness: every write that changes what search sees appends to the change feed
(``changes.py``) after its commit, and ``catch_up`` (one Redis round trip, called before every
index search) reloads the lodgings and room types named since the last call. A reader that fell
behind the feed's cap, or a new day, reloads everything.

What it does not answer (text search, amenities, dates outside its window) goes to SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import structlog
from sqlalchemy import Integer, Table, and_, case, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from haot.lodging.changes import ChangeFeed, Changes
from haot.lodging.models import Lodging, Night, RoomType
from haot.lodging.service import search_item_fields
from haot.platform.clock import seoul_today
from haot.platform.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)

_NO_NIGHT = -1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_PRICE = np.iinfo(np.int64).max
_LAST_KEY = np.iinfo(np.int64).max  # above every half of a room type id it stands in for
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Offer:
    """A lodging's cheapest qualifying room type: its stay total (dated) or "from" price, with
    the lodging's display fields as search shows them."""

    lodging: dict[str, Any]
    room_type_id: uuid.UUID
    room_type_name: str
    price: int
    nights: list[tuple[date, int]] | None


@dataclass(frozen=True, slots=True)
class OfferPage:
    offers: list[Offer]
    total: int


def _halves(value: uuid.UUID) -> tuple[int, int]:
    """A UUID as two signed 64-bit halves that sort like the UUID (as PostgreSQL and SQLite do)."""
    number = value.int
    return (number >> 64) - (1 << 63), (number & ((1 << 64) - 1)) - (1 << 63)


class OfferIndex:
    def __init__(self, *, uow: UnitOfWorkFactory, feed: ChangeFeed, window_days: int = 400) -> None:
        self._uow = uow
        self._feed = feed
        self._window = window_days
        self._lock = asyncio.Lock()
        self._loaded_on: date | None = None
        self._last_id = "0-0"
        self._base = date.min
        self._slots: dict[uuid.UUID, int] = {}
        self._codes: dict[str, int] = {}
        self._rt_ids: list[uuid.UUID] = []
        self._rt_names: list[str] = []
        self._lodging_ids: list[uuid.UUID] = []
        self._lodging_slots: dict[uuid.UUID, int] = {}
        self._lodging_items: list[dict[str, Any]] = []
        self._loading: asyncio.Task[None] | None = None
        self._round_started = 0.0
        self._reset(0)

    # Storage ------------------------------------------------------------------------------

    def _reset(self, rows: int) -> None:
        width = self._window
        self._price = np.zeros((rows, width), dtype=np.int32)
        self._free = np.full((rows, width), _NO_NIGHT, dtype=np.int16)
        self._min_stay = np.zeros((rows, width), dtype=np.int16)
        self._max_stay = np.zeros((rows, width), dtype=np.int16)
        self._active = np.zeros(rows, dtype=bool)
        self._capacity = np.zeros(rows, dtype=np.int32)
        self._rt_key = np.zeros((rows, 2), dtype=np.int64)
        self._lodging = np.zeros(rows, dtype=np.int64)  # index into _lodging_ids
        self._lodging_key = np.zeros((rows, 2), dtype=np.int64)
        self._city = np.zeros(rows, dtype=np.int32)
        self._district = np.zeros(rows, dtype=np.int32)
        self._max_guests = np.zeros(rows, dtype=np.int32)
        self._max_nights = np.zeros(rows, dtype=np.int32)
        self._created = np.zeros(rows, dtype=np.int64)
        self._rating = np.zeros(rows, dtype=np.float64)
        self._reviews = np.zeros(rows, dtype=np.int64)

    def _grow(self, rows: int) -> None:
        have = len(self._active)
        if rows <= have:
            return
        size = max(rows, have * 2, 64)
        for name in (
            "_price",
            "_free",
            "_min_stay",
            "_max_stay",
            "_active",
            "_capacity",
            "_rt_key",
            "_lodging",
            "_lodging_key",
            "_city",
            "_district",
            "_max_guests",
            "_max_nights",
            "_created",
            "_rating",
            "_reviews",
        ):
            old = getattr(self, name)
            new = np.zeros((size, *old.shape[1:]), dtype=old.dtype)
            if name == "_free":
                new[:] = _NO_NIGHT
            new[:have] = old
            setattr(self, name, new)

    def _code(self, text: str) -> int:
        return self._codes.setdefault(text, len(self._codes) + 1)

    def _slot(self, room_type_id: uuid.UUID) -> int:
        slot = self._slots.get(room_type_id)
        if slot is None:
            slot = len(self._rt_ids)
            self._slots[room_type_id] = slot
            self._rt_ids.append(room_type_id)
            self._rt_names.append("")
            self._grow(slot + 1)
        return slot

    # Loading ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._loaded_on is not None

    def start_loading(self) -> None:
        """Load everything in the background (first use, or a new day); searches go to SQL
        until it is done."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self.load(), name="offer-index")

    async def load(self) -> None:
        """Load everything now (at start-up, before the process serves). A failure (the
        database not up yet) is logged, not raised: SQL answers, and the next search retries."""
        try:
            await self._load_all(seoul_today())
        except Exception:
            log.exception("offer_index_load_failed")

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading

    async def catch_up(self) -> None:
        """Apply what the feed named since the last call: afterwards the index reflects every
        change whose feed entry was written before this call began. Concurrent callers share
        one round: a caller queued behind a round that started after it arrived is served by
        that round."""
        if not self.ready:
            return
        arrived = time.monotonic()
        async with self._lock:
            if self._round_started >= arrived or not self.ready:
                return
            self._round_started = time.monotonic()
            changes = await self._feed.since(self._last_id)
            if not changes.complete:
                self._loaded_on = None  # SQL answers until the reload is done
                self.start_loading()
                return
            if changes.lodgings or changes.room_types:
                await self._reload(changes)
            self._last_id = changes.last_id

    async def _load_all(self, today: date) -> None:
        async with self._lock:
            self._loaded_on = None
            # Read first: changes after it are applied again by the next round, and a search
            # that arrived after this instant must not count this load as its round.
            started = time.monotonic()
            last_id = await self._feed.tail()
            self._slots.clear()
            self._rt_ids.clear()
            self._rt_names.clear()
            self._lodging_ids.clear()
            self._lodging_slots.clear()
            self._lodging_items.clear()
            self._codes.clear()
            self._base = today
            self._reset(0)
            async with self._uow() as uow:
                await self._read(uow.session, None, None)
            self._last_id = last_id
            self._round_started = started
            self._loaded_on = today

    async def _reload(self, changes: Changes) -> None:
        async with self._uow() as uow:
            await self._read(uow.session, changes.lodgings, changes.room_types)

    async def _read(
        self,
        session: AsyncSession,
        lodging_ids: set[uuid.UUID] | None,
        room_type_ids: set[uuid.UUID] | None,
    ) -> None:
        """(Re)reads the given lodgings (with all their room types) and room types; None: all."""
        everything = lodging_ids is None and room_type_ids is None
        room_types = select(RoomType, Lodging).join(Lodging, Lodging.id == RoomType.lodging_id)
        if everything:
            room_types = room_types.where(
                RoomType.deleted_at.is_(None), Lodging.deleted_at.is_(None)
            )
        else:
            room_types = room_types.where(
                (RoomType.lodging_id.in_(sorted(lodging_ids or ())))
                | (RoomType.id.in_(sorted(room_type_ids or ())))
            )
        touched: list[uuid.UUID] = []
        for room_type, lodging in (await session.execute(room_types)).all():
            slot = self._slot(room_type.id)
            touched.append(room_type.id)
            self._rt_names[slot] = room_type.name
            self._active[slot] = room_type.deleted_at is None and lodging.deleted_at is None
            self._capacity[slot] = room_type.capacity
            self._rt_key[slot] = _halves(room_type.id)
            self._lodging[slot] = self._lodging_slot(lodging)
            self._lodging_key[slot] = _halves(lodging.id)
            self._city[slot] = self._code(lodging.city_key)
            self._district[slot] = self._code(lodging.district_key)
            self._max_guests[slot] = lodging.max_guests
            self._max_nights[slot] = lodging.max_nights
            self._created[slot] = (lodging.created_at - _EPOCH) // timedelta(microseconds=1)
            self._rating[slot] = -1.0 if lodging.rating_avg is None else lodging.rating_avg
            self._reviews[slot] = lodging.review_count
        if not everything:
            found = set(touched)
            for room_type_id in room_type_ids or ():
                gone = self._slots.get(room_type_id)
                if room_type_id not in found and gone is not None:  # gone from the database
                    self._active[gone] = False
            if not touched:
                return
            slots = [self._slots[t] for t in touched]
            self._free[slots] = _NO_NIGHT
        await self._read_nights(session, None if everything else touched)

    def _lodging_slot(self, lodging: Lodging) -> int:
        """The lodging's slot, its display fields refreshed (search pages need no row read)."""
        item = search_item_fields(lodging)
        known = self._lodging_slots.get(lodging.id)
        if known is not None:
            self._lodging_items[known] = item
            return known
        slot = self._lodging_slots[lodging.id] = len(self._lodging_ids)
        self._lodging_ids.append(lodging.id)
        self._lodging_items.append(item)
        return slot

    async def _read_nights(
        self, session: AsyncSession, room_type_ids: list[uuid.UUID] | None
    ) -> None:
        """Each room type's nights in the window, as one row of arrays per room type."""
        nights = cast(Table, Night.__table__)
        postgres = session.get_bind().dialect.name == "postgresql"
        offset: Any = (
            nights.c.date - self._base
            if postgres
            else func.julianday(nights.c.date) - func.julianday(self._base.isoformat())
        )
        free_rooms = case(
            (nights.c.closed.is_(True), 0),
            else_=nights.c.total - nights.c.held - nights.c.sold,
        )
        if postgres:
            await self._copy_nights(session, room_type_ids)
            return
        values = [sql_cast(offset, Integer), nights.c.price, free_rooms]
        values += [nights.c.min_stay, nights.c.max_stay]
        statement = (
            select(nights.c.room_type_id, *(func.json_group_array(v) for v in values))
            .where(
                and_(
                    nights.c.date >= self._base,
                    nights.c.date < self._base + timedelta(days=self._window),
                )
            )
            .group_by(nights.c.room_type_id)
        )
        if room_type_ids is not None:
            statement = statement.where(nights.c.room_type_id.in_(room_type_ids))
        for room_type_id, *raw in (await session.execute(statement)).all():
            slot = self._slots.get(room_type_id)
            if slot is not None:
                days, prices, frees, mins, maxs = (np.asarray(json.loads(v)) for v in raw)
                self._put(np.full(len(days), slot), days, prices, frees, mins, maxs)

    def _put(self, slots: Any, days: Any, prices: Any, frees: Any, mins: Any, maxs: Any) -> None:
        at = (slots.astype(np.int64), days.astype(np.int64))
        self._price[at] = prices
        self._free[at] = np.maximum(frees, 0)
        self._min_stay[at] = mins
        self._max_stay[at] = maxs

    async def _copy_nights(
        self, session: AsyncSession, room_type_ids: list[uuid.UUID] | None
    ) -> None:
        """PostgreSQL: the nights as a binary COPY of fixed-width rows, read by numpy as they
        arrive: a sequential scan and no Python object per night (7 million nights in seconds;
        aggregating them into arrays in SQL took 15-40 s)."""
        query = _COPY_NIGHTS + (" AND room_type_id = ANY($3::uuid[])" if room_type_ids else "")
        args: list[Any] = [self._base, self._base + timedelta(days=self._window)]
        if room_type_ids:
            args.append(room_type_ids)
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        reader = _CopyReader(self)
        await driver.copy_from_query(query, *args, output=reader.feed, format="binary")
        reader.finish()

    # Searching ----------------------------------------------------------------------------

    def wanted(self, today: date) -> bool:
        """Whether a search should wait for SQL while the index (re)loads; starts the load."""
        if self._loaded_on != today:
            self.start_loading()
            return True
        return False

    def covers(self, check_in: date | None, check_out: date | None, today: date) -> bool:
        """Whether the index can answer a search of these dates (None: undated, from today)."""
        if not self.ready or self._base != today:
            return False
        end = check_out if check_out is not None else today
        return (end - self._base).days <= self._window

    def search(
        self,
        *,
        region: str | None,
        guests: int,
        check_in: date | None,
        check_out: date | None,
        from_days: int,
        min_price: int | None,
        max_price: int | None,
        sort: str,
        offset: int,
        limit: int,
    ) -> OfferPage:
        rows = len(self._rt_ids)
        mask = self._active[:rows] & (self._capacity[:rows] >= guests)
        mask &= self._max_guests[:rows] >= guests
        if region is not None:
            code = self._codes.get(region)
            if code is None:
                return OfferPage([], 0)
            mask &= (self._city[:rows] == code) | (self._district[:rows] == code)
        dated = check_in is not None and check_out is not None
        length = 0
        if check_in is not None and check_out is not None:
            length = (check_out - check_in).days
            mask &= self._max_nights[:rows] >= length
            first = (check_in - self._base).days
            columns = slice(first, first + length)
        else:
            start = 0
            columns = slice(start, start + from_days)
        candidates = np.nonzero(mask)[0]
        free = self._free[candidates, columns]
        prices = self._price[candidates, columns].astype(np.int64)
        if dated:
            ok = (free >= 1).all(axis=1)
            ok &= self._min_stay[candidates, columns].max(axis=1, initial=0) <= length
            ok &= self._max_stay[candidates, columns].min(axis=1, initial=1 << 14) >= length
            price = prices.sum(axis=1)
        else:
            open_nights = free >= 1
            ok = open_nights.any(axis=1)
            price = np.where(open_nights, prices, _NO_PRICE).min(axis=1, initial=_NO_PRICE)
        candidates, price = candidates[ok], price[ok]
        if not len(candidates):
            return OfferPage([], 0)
        best, best_price = self._cheapest_per_lodging(candidates, price)
        keep = np.ones(len(best), dtype=bool)
        if min_price is not None:
            keep &= best_price >= min_price
        if max_price is not None:
            keep &= best_price <= max_price
        best, best_price = best[keep], best_price[keep]
        shown = self._ordering(sort, best, best_price)[offset : offset + limit]
        page = best[shown].tolist()
        page_prices = best_price[shown].tolist()
        offers = [
            Offer(
                lodging=self._lodging_items[int(self._lodging[slot])],
                room_type_id=self._rt_ids[slot],
                room_type_name=self._rt_names[slot],
                price=int(slot_price),
                nights=(
                    [
                        (self._base + timedelta(days=column), int(self._price[slot, column]))
                        for column in range(columns.start, columns.stop)
                    ]
                    if dated
                    else None
                ),
            )
            for slot, slot_price in zip(page, page_prices, strict=True)
        ]
        return OfferPage(offers, len(best))

    def _cheapest_per_lodging(self, candidates: Ints, price: Ints) -> tuple[Ints, Ints]:
        """Each lodging's cheapest room type among ``candidates`` (ties: the smaller room type
        id, as SQL ranks them) and its price. One sort by lodging, then minimums per lodging:
        cheaper than sorting by (lodging, price, id) when a city has thousands of candidates."""
        lodgings = self._lodging[candidates]
        by_lodging = np.argsort(lodgings)
        candidates, price, lodgings = (
            candidates[by_lodging],
            price[by_lodging],
            lodgings[by_lodging],
        )
        starts = np.flatnonzero(np.r_[True, lodgings[1:] != lodgings[:-1]])
        group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(lodgings)]))
        chosen = price == np.minimum.reduceat(price, starts)[group]
        for half in (0, 1):  # the smaller id among the cheapest: its high half, then its low
            key = np.where(chosen, self._rt_key[candidates, half], _LAST_KEY)
            chosen &= key == np.minimum.reduceat(key, starts)[group]
        return candidates[chosen], price[chosen]

    def _ordering(self, sort: str, best: Ints, price: Ints) -> Any:
        """Positions of ``best`` in the order of ``search._ordering`` (the last key of lexsort
        is the primary one)."""
        hi, lo = self._lodging_key[best, 0], self._lodging_key[best, 1]
        match sort:
            case "price":
                return np.lexsort((lo, hi, price))
            case "-price":
                return np.lexsort((lo, hi, -price))
            case "rating":
                return np.lexsort((lo, hi, -self._reviews[best], -self._rating[best]))
            case "reviews":
                return np.lexsort((lo, hi, -self._reviews[best]))
            case _:
                # ~x reverses the order of x without overflowing at the smallest int64.
                return np.lexsort((~lo, ~hi, -self._created[best]))


async def _rows(session: AsyncSession, statement: Any, *, stream: bool) -> AsyncIterator[Any]:
    """The rows of ``statement``: streamed in partitions on PostgreSQL (a full load holds every
    room type's arrays), at once on SQLite (whose server-side cursors keep the database locked
    for longer than the read)."""
    if stream:
        result = await session.stream(statement)
        async for partition in result.partitions(500):
            for row in partition:
                yield row
    else:
        for row in (await session.execute(statement)).all():
            yield row


_COPY_NIGHTS = (
    "SELECT room_type_id, (date - $1::date)::int4, price::int4,"
    " (CASE WHEN closed THEN 0 ELSE total - held - sold END)::int4,"
    " min_stay::int4, max_stay::int4"
    " FROM lodging_nights WHERE date >= $1::date AND date < $2::date"
)
# One row of PostgreSQL's binary COPY of _COPY_NIGHTS: the field count, then each field's length
# and value (no NULLs: every column is NOT NULL).
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("uuid_length", ">i4"),
        ("room_type", "V16"),
        *(
            item
            for name in ("day", "price", "free", "min_stay", "max_stay")
            for item in ((f"{name}_length", ">i4"), (name, ">i4"))
        ),
    ]
)
_HEADER = 19  # signature (11), flags (4), header extension length (4)


class _CopyReader:
    """Parses a binary COPY stream into the index's arrays, a few megabytes at a time."""

    _BATCH = 8 * 1024 * 1024

    def __init__(self, index: OfferIndex) -> None:
        self._index = index
        self._chunks: list[bytes] = []
        self._size = 0
        self._header_seen = False
        self._known: tuple[Any, Any, Any, Any] | None = None

    async def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= self._BATCH:
            self._parse()

    def finish(self) -> None:
        self._parse()
        left = b"".join(self._chunks)
        if left not in (b"", b"\xff\xff"):  # nothing, or the trailer
            raise ValueError(f"binary COPY ended with {len(left)} stray bytes")

    def _parse(self) -> None:
        data = b"".join(self._chunks)
        if not self._header_seen:
            if len(data) < _HEADER:
                self._chunks, self._size = [data], len(data)
                return
            data = data[_HEADER:]
            self._header_seen = True
        whole = len(data) // _ROW.itemsize * _ROW.itemsize
        rest = data[whole:]
        self._chunks, self._size = [rest], len(rest)
        if whole:
            self._apply(np.frombuffer(data, dtype=_ROW, count=whole // _ROW.itemsize))

    def _apply(self, rows: Any) -> None:
        halves = np.ascontiguousarray(rows["room_type"]).view(">u8").reshape(-1, 2)
        slots = self._slots_of(halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64))
        known = slots >= 0
        rows = rows[known]
        self._index._put(
            slots[known],
            rows["day"],
            rows["price"],
            rows["free"],
            rows["min_stay"],
            rows["max_stay"],
        )

    def _slots_of(self, hi: Any, lo: Any) -> Any:
        """Each row's slot (-1: a room type the index does not hold), without a Python object
        per row: the known room types sorted by a 64-bit mix of their UUID, searched with
        numpy, and every match checked against the whole UUID."""
        if self._known is None:
            ids = list(self._index._slots)
            raw = np.frombuffer(b"".join(u.bytes for u in ids), dtype=">u8").reshape(-1, 2)
            known_hi, known_lo = raw[:, 0].astype(np.uint64), raw[:, 1].astype(np.uint64)
            mixed = _mix(known_hi, known_lo)
            order = np.argsort(mixed)
            slots = np.array([self._index._slots[u] for u in ids], dtype=np.int64)
            self._known = (mixed[order], known_hi[order], known_lo[order], slots[order])
        mixed, known_hi, known_lo, known_slots = self._known
        if not len(mixed):
            return np.full(len(hi), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(mixed, _mix(hi, lo)), len(mixed) - 1)
        found = (known_hi[at] == hi) & (known_lo[at] == lo)
        slots = np.where(found, known_slots[at], -1)
        for row in np.flatnonzero(~found).tolist():  # a mix collision (or unknown): by the dict
            key = uuid.UUID(bytes=int(hi[row]).to_bytes(8, "big") + int(lo[row]).to_bytes(8, "big"))
            slots[row] = self._index._slots.get(key, -1)
        return slots


def _mix(hi: Any, lo: Any) -> Any:
    with np.errstate(over="ignore"):
        return hi ^ (lo * np.uint64(0x9E3779B97F4A7C15))
