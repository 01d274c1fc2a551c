"""Public reads: search, lodging detail and month calendar, cached in Redis.

A search page costs a bounded number of statements whatever its size: one count, one page (with
the cheapest qualifying room type and stay total computed in SQL), one nightly breakdown for the
page's room types.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Integer, Select, String, and_, bindparam, func, or_, select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from haot.lodging.cache import LodgingCache
from haot.lodging.domain import month_range, stay_problem
from haot.lodging.errors import InvalidStay, LodgingNotFound
from haot.lodging.models import Lodging, LodgingAmenity, Night, RoomType
from haot.lodging.offers import OfferIndex
from haot.lodging.repository import LodgingRepository
from haot.lodging.schemas import (
    LodgingDetail,
    NightPrice,
    PublicCalendar,
    PublicNight,
    PublicRoomTypeCalendar,
    SearchItem,
    SearchPage,
)
from haot.lodging.service import lodging_read, room_type_read, search_item_fields
from haot.platform.clock import seoul_today
from haot.platform.uow import UnitOfWorkFactory

Sort = Literal["price", "-price", "rating", "reviews", "newest"]

# Without dates a lodging shows its "from" price: the lowest open night within this horizon.
# Unbounded, the look-up read every future night of every candidate (4 s for 3,000 lodgings).
FROM_PRICE_HORIZON_DAYS = 60


@dataclass(frozen=True, slots=True)
class CacheMiss:
    """A search page not in the cache: its cache key and the generation it was missed at."""

    key: str
    generation: str


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


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a search's SQL depends on besides its values: one statement per shape, built once."""

    region: bool
    text: bool
    amenities: bool
    dated: bool
    min_price: bool
    max_price: bool
    sort: Sort

    @classmethod
    def of(cls, query: SearchQuery) -> _Shape:
        return cls(
            region=bool(query.region),
            text=bool(query.q),
            amenities=bool(query.amenities),
            dated=query.nights is not None,
            min_price=query.min_price is not None,
            max_price=query.max_price is not None,
            sort=query.sort,
        )


def _values(query: SearchQuery, today: date) -> dict[str, Any]:
    """The bound values of a search's statement (``_Shape`` says which ones it uses)."""
    wanted = sorted(set(query.amenities))
    return {
        "guests": query.guests,
        "region": (query.region or "").strip().lower(),
        "pattern": _like((query.q or "").strip()),
        "amenities": wanted,
        "amenity_count": len(wanted),
        "check_in": query.check_in,
        "check_out": query.check_out,
        "nights": query.nights,
        "today": today,
        "horizon": today + timedelta(days=FROM_PRICE_HORIZON_DAYS),
        "min_price": query.min_price,
        "max_price": query.max_price,
        "limit": query.size,
        "offset": (query.page - 1) * query.size,
    }


def _offers(shape: _Shape) -> Any:
    """Per lodging that passes the filters, its cheapest qualifying room type and that room
    type's price: the stay's total with dates, else the lowest open price of any upcoming night
    (the "from" price). The lodging filters come first, so only the candidates' nights are read
    (at 10,000 lodgings, aggregating every lodging's nights and filtering after cost seconds)."""
    guests: BindParameter[int] = bindparam("guests", type_=Integer)
    lodging_filters: list[ColumnElement[bool]] = [
        Lodging.deleted_at.is_(None),
        Lodging.max_guests >= guests,
    ]
    if shape.region:
        region: BindParameter[str] = bindparam("region", type_=String)
        lodging_filters.append(or_(Lodging.city_key == region, Lodging.district_key == region))
    if shape.text:
        lodging_filters.append(Lodging.search_text.like(bindparam("pattern"), escape="\\"))
    if shape.amenities:
        having_all = (
            select(LodgingAmenity.lodging_id)
            .where(LodgingAmenity.amenity.in_(bindparam("amenities", expanding=True)))
            .group_by(LodgingAmenity.lodging_id)
            .having(func.count() == bindparam("amenity_count"))
        )
        lodging_filters.append(Lodging.id.in_(having_all))
    night_filters: list[ColumnElement[bool]] = [
        Night.closed.is_(False),
        (Night.total - Night.held - Night.sold) >= 1,
    ]
    if shape.dated:
        nights: BindParameter[int] = bindparam("nights", type_=Integer)
        lodging_filters.append(Lodging.max_nights >= nights)
        night_filters += [Night.date >= bindparam("check_in"), Night.date < bindparam("check_out")]
        price: Any = func.sum(Night.price)
    else:
        night_filters += [Night.date >= bindparam("today"), Night.date < bindparam("horizon")]
        price = func.min(Night.price)
    # The window runs after GROUP BY and HAVING: it ranks each lodging's qualifying room types.
    stays = (
        select(
            Lodging.id.label("lodging_id"),
            # What the sorts need, so a page is chosen before any lodging row is read in full
            # (functionally dependent on the grouped primary key).
            Lodging.created_at.label("created_at"),
            Lodging.rating_avg.label("rating_avg"),
            Lodging.review_count.label("review_count"),
            RoomType.id.label("room_type_id"),
            RoomType.name.label("room_type_name"),
            price.label("price"),
            func.row_number()
            .over(partition_by=Lodging.id, order_by=(price, RoomType.id))
            .label("rank"),
        )
        .select_from(Lodging)
        .join(
            RoomType,
            and_(
                RoomType.lodging_id == Lodging.id,
                RoomType.deleted_at.is_(None),
                RoomType.capacity >= guests,
            ),
        )
        .join(Night, Night.room_type_id == RoomType.id)
        .where(*lodging_filters, *night_filters)
        .group_by(
            Lodging.id,
            Lodging.created_at,
            Lodging.rating_avg,
            Lodging.review_count,
            RoomType.id,
            RoomType.name,
        )
    )
    if shape.dated:
        stays = stays.having(
            and_(
                func.count() == nights,
                func.max(Night.min_stay) <= nights,
                func.min(Night.max_stay) >= nights,
            )
        )
    ranked = stays.subquery("ranked")
    conditions: list[ColumnElement[bool]] = [ranked.c.rank == 1]
    if shape.min_price:
        conditions.append(ranked.c.price >= bindparam("min_price"))
    if shape.max_price:
        conditions.append(ranked.c.price <= bindparam("max_price"))
    return ranked, conditions


def _ordering(sort: Sort, offer: Any) -> list[Any]:
    """ORDER BY terms on the columns of ``offer`` (the ranked offers, or a page of them)."""
    match sort:
        case "price":
            return [offer.price.asc(), offer.lodging_id]
        case "-price":
            return [offer.price.desc(), offer.lodging_id]
        case "rating":
            return [
                func.coalesce(offer.rating_avg, -1).desc(),
                offer.review_count.desc(),
                offer.lodging_id,
            ]
        case "reviews":
            return [offer.review_count.desc(), offer.lodging_id]
        case _:
            return [offer.created_at.desc(), offer.lodging_id.desc()]


@functools.lru_cache(maxsize=512)
def _statements(shape: _Shape) -> tuple[Select[Any], Select[Any]]:
    """(the page with the total beside every row, the total alone) for one shape. The page is
    chosen among the ranked offers first; only its rows are joined to their lodgings."""
    ranked, conditions = _offers(shape)
    chosen = (
        select(ranked, func.count().over().label("total"))
        .where(*conditions)
        .order_by(*_ordering(shape.sort, ranked.c))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery("chosen")
    )
    page = (
        select(
            Lodging,
            chosen.c.room_type_id,
            chosen.c.room_type_name,
            chosen.c.price,
            chosen.c.total,
        )
        .join(chosen, chosen.c.lodging_id == Lodging.id)
        .order_by(*_ordering(shape.sort, chosen.c))
    )
    total = select(func.count()).select_from(ranked).where(*conditions)
    return page, total


class LodgingSearch:
    def __init__(
        self, *, uow: UnitOfWorkFactory, cache: LodgingCache, offers: OfferIndex | None = None
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._offers = offers

    async def search(self, query: SearchQuery) -> SearchPage:
        return SearchPage.model_validate_json(await self.search_json(query))

    async def search_json(
        self, query: SearchQuery, *, request_key: str | None = None, missed: CacheMiss | None = None
    ) -> str:
        """The search page as JSON text, served from the cache as stored (no re-validation).
        ``request_key``: the canonical query string the page is cached under instead of the
        query's own key, so that ``cached_search_json`` can find it without parsing.
        ``missed``: what ``cached_search_json`` answered for that key (not read again)."""
        today = seoul_today()
        query.validate(today)
        key = (
            f"{today}|{request_key}" if request_key is not None else f"{today}|{query.cache_key()}"
        )

        async def load() -> str:
            return await self._search_json(query, today)

        missed_at = missed.generation if missed is not None and missed.key == key else None
        return await self._cache.get_text_or_load("search", load, params=key, missed_at=missed_at)

    async def cached_search_json(self, request_key: str) -> str | CacheMiss:
        """The cached page of a query string answered before (``search_json`` with the same
        ``request_key``), or the miss to hand to ``search_json``: one Redis round trip, nothing
        parsed or validated (only a query that passed validation was ever stored)."""
        key = f"{seoul_today()}|{request_key}"
        payload, generation = await self._cache.read_text("search", params=key)
        return CacheMiss(key, generation) if payload is None else payload

    async def _search_json(self, query: SearchQuery, today: date) -> str:
        offers = self._offers
        # Text and amenity filters are the SQL statements' alone; so are dates past the window.
        if offers is not None and not query.q and not query.amenities:
            if not offers.wanted(today):
                await offers.catch_up()
            if offers.covers(query.check_in, query.check_out, today):
                return _page_of_offers(query, offers)
        return (await self._search_in_sql(query, today)).model_dump_json()

    async def _search_in_sql(self, query: SearchQuery, today: date) -> SearchPage:
        page_statement, total_statement = _statements(_Shape.of(query))
        values = _values(query, today)
        async with self._uow() as uow:
            session = uow.session
            rows = (await session.execute(page_statement, values)).all()
            if rows:
                total = int(rows[0].total)
            else:  # past the last page (or nothing at all): the page cannot say how many
                total = int((await session.execute(total_statement, values)).scalar_one())
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
                    **search_item_fields(lodging),
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
        return await self._cache.get_or_load_of_lodging(
            "calendar",
            lodging_id,
            month,
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


def _page_of_offers(query: SearchQuery, offers: OfferIndex) -> str:
    """The page as JSON text, the very text ``SearchPage.model_dump_json`` makes of the SQL
    search's page (a test holds them equal), without building a model per item first."""
    found = offers.search(
        # As the SQL statement reads it: a region given (even blank) filters, none does not.
        region=query.region.strip().lower() if query.region else None,
        guests=query.guests,
        check_in=query.check_in,
        check_out=query.check_out,
        from_days=FROM_PRICE_HORIZON_DAYS,
        min_price=query.min_price,
        max_price=query.max_price,
        sort=query.sort,
        offset=(query.page - 1) * query.size,
        limit=query.size,
    )
    dated = query.nights is not None
    items = [
        {
            **offer.lodging,
            "room_type_id": offer.room_type_id,
            "room_type_name": offer.room_type_name,
            "total_price": offer.price if dated else None,
            "nights": [{"date": d, "price": p} for d, p in offer.nights or ()] if dated else None,
            "min_night_price": None if dated else offer.price,
        }
        for offer in found.offers
    ]
    page = {"items": items, "page": query.page, "size": query.size, "total": found.total}
    # default=str: asyncpg's own UUID type, which orjson does not know, as its canonical text.
    return orjson.dumps(page, default=str, option=orjson.OPT_UTC_Z).decode()
