"""Public reads: search, lodging detail and month calendar, cached in Redis.

A search page costs a bounded number of statements whatever its size: one count, one page (with
the cheapest qualifying room type and stay total computed in SQL), one nightly breakdown for the
page's room types.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

import orjson
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from haot.lodging.cache import LodgingCache
from haot.lodging.domain import month_range, stay_problem
from haot.lodging.errors import InvalidStay, LodgingNotFound
from haot.lodging.models import Lodging, LodgingAmenity, Night, RoomType
from haot.lodging.repository import LodgingRepository
from haot.lodging.schemas import (
    LodgingDetail,
    NightPrice,
    PublicCalendar,
    PublicNight,
    PublicRoomTypeCalendar,
    Region,
    SearchItem,
    SearchPage,
)
from haot.lodging.service import lodging_read, room_type_read
from haot.platform.clock import seoul_today
from haot.platform.uow import UnitOfWorkFactory

Sort = Literal["price", "-price", "rating", "reviews", "newest"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    region: str | None = None
    q: str | None = None
    check_in: date | None = None
    check_out: date | None = None
    guests: int = 1
    min_price: int | None = None
    max_price: int | None = None
    amenities: tuple[str, ...] = ()
    sort: Sort = "newest"
    page: int = 1
    size: int = 20

    def validate(self, today: date) -> None:
        if (self.check_in is None) != (self.check_out is None):
            raise InvalidStay("give both check_in and check_out, or neither")
        if (
            self.check_in is not None
            and self.check_out is not None
            and (problem := stay_problem(self.check_in, self.check_out, today=today))
        ):
            raise InvalidStay(problem)
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            from haot.platform.errors import InvalidInput

            raise InvalidInput("min_price must not exceed max_price")

    @property
    def nights(self) -> int | None:
        if self.check_in is None or self.check_out is None:
            return None
        return (self.check_out - self.check_in).days

    def cache_key(self) -> str:
        return orjson.dumps(asdict(self), default=str).decode()


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _lodging_filters(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Lodging.deleted_at.is_(None),
        Lodging.max_guests >= query.guests,
    ]
    if query.region:
        key = query.region.strip().lower()
        conditions.append(or_(Lodging.city_key == key, Lodging.district_key == key))
    if query.q:
        pattern = _like(query.q.strip())
        conditions.append(Lodging.search_text.like(pattern, escape="\\"))
    if query.amenities:
        wanted = sorted(set(query.amenities))
        having_all = (
            select(LodgingAmenity.lodging_id)
            .where(LodgingAmenity.amenity.in_(wanted))
            .group_by(LodgingAmenity.lodging_id)
            .having(func.count() == len(wanted))
        )
        conditions.append(Lodging.id.in_(having_all))
    if query.nights is not None:
        conditions.append(Lodging.max_nights >= query.nights)
    return conditions


def _offers(query: SearchQuery, today: date) -> Any:
    """Per lodging, its cheapest qualifying room type and that room type's price."""
    available = (Night.total - Night.held - Night.sold) >= 1
    if query.check_in is not None and query.check_out is not None and query.nights:
        stays = (
            select(
                Night.lodging_id.label("lodging_id"),
                Night.room_type_id.label("room_type_id"),
                func.sum(Night.price).label("price"),
            )
            .join(RoomType, RoomType.id == Night.room_type_id)
            .where(
                Night.date >= query.check_in,
                Night.date < query.check_out,
                Night.closed.is_(False),
                available,
                RoomType.capacity >= query.guests,
                RoomType.deleted_at.is_(None),
            )
            .group_by(Night.lodging_id, Night.room_type_id)
            .having(
                and_(
                    func.count() == query.nights,
                    func.max(Night.min_stay) <= query.nights,
                    func.min(Night.max_stay) >= query.nights,
                )
            )
            .subquery("stays")
        )
    else:
        # Without dates: the lowest open price of any upcoming night is the lodging's "from" price.
        stays = (
            select(
                Night.lodging_id.label("lodging_id"),
                Night.room_type_id.label("room_type_id"),
                func.min(Night.price).label("price"),
            )
            .join(RoomType, RoomType.id == Night.room_type_id)
            .where(
                Night.date >= today,
                Night.closed.is_(False),
                available,
                RoomType.capacity >= query.guests,
                RoomType.deleted_at.is_(None),
            )
            .group_by(Night.lodging_id, Night.room_type_id)
            .subquery("stays")
        )
    ranked = select(
        stays.c.lodging_id,
        stays.c.room_type_id,
        stays.c.price,
        func.row_number()
        .over(partition_by=stays.c.lodging_id, order_by=(stays.c.price, stays.c.room_type_id))
        .label("rank"),
    ).subquery("ranked")
    return (
        select(ranked.c.lodging_id, ranked.c.room_type_id, ranked.c.price)
        .where(ranked.c.rank == 1)
        .subquery("offers")
    )


def _ordering(sort: Sort, price: Any) -> list[Any]:
    match sort:
        case "price":
            return [price.asc(), Lodging.id]
        case "-price":
            return [price.desc(), Lodging.id]
        case "rating":
            return [
                func.coalesce(Lodging.rating_avg, -1).desc(),
                Lodging.review_count.desc(),
                Lodging.id,
            ]
        case "reviews":
            return [Lodging.review_count.desc(), Lodging.id]
        case _:
            return [Lodging.created_at.desc(), Lodging.id.desc()]


class LodgingSearch:
    def __init__(self, *, uow: UnitOfWorkFactory, cache: LodgingCache) -> None:
        self._uow = uow
        self._cache = cache

    async def search(self, query: SearchQuery) -> SearchPage:
        today = seoul_today()
        query.validate(today)
        return await self._cache.get_or_load(
            "search", f"{today}|{query.cache_key()}", SearchPage, lambda: self._search(query, today)
        )

    async def _search(self, query: SearchQuery, today: date) -> SearchPage:
        offers = _offers(query, today)
        conditions = _lodging_filters(query)
        if query.min_price is not None:
            conditions.append(offers.c.price >= query.min_price)
        if query.max_price is not None:
            conditions.append(offers.c.price <= query.max_price)
        base: Select[Any] = (
            select(
                Lodging,
                offers.c.room_type_id,
                offers.c.price,
                RoomType.name.label("room_type_name"),
            )
            .join(offers, offers.c.lodging_id == Lodging.id)
            .join(RoomType, RoomType.id == offers.c.room_type_id)
            .where(*conditions)
        )
        async with self._uow() as uow:
            session = uow.session
            total = (
                await session.execute(select(func.count()).select_from(base.subquery()))
            ).scalar_one()
            rows = (
                await session.execute(
                    base.order_by(*_ordering(query.sort, offers.c.price))
                    .offset((query.page - 1) * query.size)
                    .limit(query.size)
                )
            ).all()
            breakdown: dict[uuid.UUID, list[NightPrice]] = {}
            room_type_ids = [row.room_type_id for row in rows]
            if query.check_in is not None and query.check_out is not None and room_type_ids:
                for night in await LodgingRepository(session).nights(
                    room_type_ids, query.check_in, query.check_out
                ):
                    breakdown.setdefault(night.room_type_id, []).append(
                        NightPrice(date=night.date, price=night.price)
                    )
        items = []
        for row in rows:
            lodging: Lodging = row[0]
            dated = query.nights is not None
            items.append(
                SearchItem(
                    id=lodging.id,
                    name=lodging.name,
                    region=Region(city=lodging.city, district=lodging.district),
                    address=lodging.address,
                    latitude=lodging.latitude,
                    longitude=lodging.longitude,
                    amenities=list(lodging.amenities),
                    image_urls=list(lodging.image_urls),
                    max_guests=lodging.max_guests,
                    rating=round(lodging.rating_avg, 2) if lodging.rating_avg is not None else None,
                    review_count=lodging.review_count,
                    created_at=lodging.created_at,
                    room_type_id=row.room_type_id,
                    room_type_name=row.room_type_name,
                    total_price=int(row.price) if dated else None,
                    nights=breakdown.get(row.room_type_id, []) if dated else None,
                    min_night_price=None if dated else int(row.price),
                )
            )
        return SearchPage(items=items, page=query.page, size=query.size, total=int(total))

    async def detail(self, lodging_id: uuid.UUID) -> LodgingDetail:
        return await self._cache.get_or_load(
            "detail", str(lodging_id), LodgingDetail, lambda: self._detail(lodging_id)
        )

    async def _detail(self, lodging_id: uuid.UUID) -> LodgingDetail:
        async with self._uow() as uow:
            repo = LodgingRepository(uow.session)
            lodging = await repo.get(lodging_id)
            if lodging is None:
                raise LodgingNotFound()
            room_types = await repo.room_types_of([lodging.id])
        return LodgingDetail(
            **lodging_read(lodging).model_dump(), room_types=[room_type_read(r) for r in room_types]
        )

    async def calendar(self, lodging_id: uuid.UUID, month: str) -> PublicCalendar:
        start, end = month_range(month)
        return await self._cache.get_or_load(
            "calendar",
            f"{lodging_id}|{month}",
            PublicCalendar,
            lambda: self._calendar(lodging_id, month, start, end),
        )

    async def _calendar(
        self, lodging_id: uuid.UUID, month: str, start: date, end: date
    ) -> PublicCalendar:
        async with self._uow() as uow:
            repo = LodgingRepository(uow.session)
            lodging = await repo.get(lodging_id)
            if lodging is None:
                raise LodgingNotFound()
            room_types = await repo.room_types_of([lodging.id])
            nights = await repo.nights([rt.id for rt in room_types], start, end)
        by_room_type: dict[uuid.UUID, list[PublicNight]] = {}
        for night in nights:
            by_room_type.setdefault(night.room_type_id, []).append(
                PublicNight(
                    date=night.date,
                    price=night.price,
                    available=max(0, night.total - night.held - night.sold),
                    closed=night.closed,
                )
            )
        return PublicCalendar(
            lodging_id=lodging.id,
            month=month,
            room_types=[
                PublicRoomTypeCalendar(
                    room_type_id=rt.id,
                    name=rt.name,
                    capacity=rt.capacity,
                    days=by_room_type.get(rt.id, []),
                )
                for rt in room_types
            ],
        )
