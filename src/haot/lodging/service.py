"""Host use cases: lodgings, room types and the calendar. Each runs in one unit of work, and the
public read cache is invalidated after every commit that changes what guests see."""

from __future__ import annotations

import uuid
from typing import Any

from haot.lodging import events
from haot.lodging.cache import LodgingCache
from haot.lodging.domain import each_night, month_range, nightly_price
from haot.lodging.errors import (
    InvalidDates,
    InventoryConflict,
    InventoryExceedsRooms,
    LodgingHasBookings,
    LodgingNotFound,
    PriceRequired,
    RoomTypeNotFound,
)
from haot.lodging.models import Lodging, Night, RoomType
from haot.lodging.repository import LodgingRepository
from haot.lodging.schemas import (
    CalendarUpdate,
    HostCalendar,
    HostNight,
    LodgingCreate,
    LodgingDetail,
    LodgingRead,
    LodgingUpdate,
    RefundTier,
    Region,
    RoomTypeCreate,
    RoomTypeRead,
    RoomTypeUpdate,
)
from haot.platform.auth import Principal
from haot.platform.clock import seoul_today, utcnow
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams


def search_item_fields(row: Lodging) -> dict[str, Any]:
    """The lodging's fields on a search page (``SearchItem``'s, in its order), for the SQL
    search and the offer index alike."""
    return {
        "id": row.id,
        "name": row.name,
        "region": {"city": row.city, "district": row.district},
        "address": row.address,
        "latitude": row.latitude,
        "longitude": row.longitude,
        "amenities": list(row.amenities),
        "image_urls": list(row.image_urls),
        "max_guests": row.max_guests,
        "rating": round(row.rating_avg, 2) if row.rating_avg is not None else None,
        "review_count": row.review_count,
        "created_at": row.created_at,
    }


def lodging_read(row: Lodging) -> LodgingRead:
    return LodgingRead(
        id=row.id,
        host_id=row.host_id,
        name=row.name,
        description=row.description,
        address=row.address,
        region=Region(city=row.city, district=row.district),
        latitude=row.latitude,
        longitude=row.longitude,
        amenities=list(row.amenities),
        image_urls=list(row.image_urls),
        max_guests=row.max_guests,
        check_in_time=row.check_in_time,
        check_out_time=row.check_out_time,
        max_nights=row.max_nights,
        cancellation_policy=[RefundTier.model_validate(t) for t in row.cancellation_policy],
        rating=round(row.rating_avg, 2) if row.rating_avg is not None else None,
        review_count=row.review_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def room_type_read(row: RoomType) -> RoomTypeRead:
    return RoomTypeRead(
        id=row.id,
        lodging_id=row.lodging_id,
        name=row.name,
        capacity=row.capacity,
        total_rooms=row.total_rooms,
    )


def host_night(night: Night) -> HostNight:
    return HostNight(
        date=night.date,
        price=night.price,
        total=night.total,
        held=night.held,
        sold=night.sold,
        closed=night.closed,
        min_stay=night.min_stay,
        max_stay=night.max_stay,
    )


def _apply_lodging_fields(row: Lodging, fields: dict[str, Any]) -> None:
    region = fields.pop("region", None)
    if region is not None:
        row.city, row.district = region["city"], region["district"]
        row.city_key, row.district_key = row.city.lower(), row.district.lower()
    if "cancellation_policy" in fields:
        fields["cancellation_policy"] = sorted(
            fields["cancellation_policy"], key=lambda t: -t["days_before"]
        )
    if "amenities" in fields:
        fields["amenities"] = sorted(set(fields["amenities"]))
    for name, value in fields.items():
        setattr(row, name, value)
    # Lower-cased in Python (full Unicode), because SQLite's lower() folds ASCII only.
    row.search_text = " ".join((row.name, row.address, row.description)).lower()


class LodgingService:
    def __init__(self, *, uow: UnitOfWorkFactory, cache: LodgingCache) -> None:
        self._uow = uow
        self._cache = cache

    async def apply_rating(
        self,
        unit: UnitOfWork,
        lodging_id: uuid.UUID,
        *,
        review_count: int,
        rating_sum: int,
        version: int,
    ) -> None:
        """The review context's figures for a lodging, unless a newer version is here already
        (a redelivered or late event changes nothing); guests see them once committed."""
        applied = await LodgingRepository(unit.session).set_rating(
            lodging_id,
            review_count=review_count,
            rating_sum=rating_sum,
            rating_avg=rating_sum / review_count if review_count else None,
            version=version,
        )
        if applied:
            unit.after_commit(lambda: self._cache.invalidate(lodging_id), wait=True)

    async def _owned_lodging(
        self, uow: UnitOfWork, principal: Principal, lodging_id: uuid.UUID, *, for_update: bool
    ) -> Lodging:
        lodging = await LodgingRepository(uow.session).get(lodging_id, for_update=for_update)
        if lodging is None or not (principal.is_admin or lodging.host_id == principal.user_id):
            raise LodgingNotFound()
        return lodging

    async def _owned_room_type(
        self,
        uow: UnitOfWork,
        principal: Principal,
        room_type_id: uuid.UUID,
        *,
        for_update: bool = True,
    ) -> tuple[RoomType, Lodging]:
        room_type = await LodgingRepository(uow.session).get_room_type(
            room_type_id, for_update=for_update
        )
        if room_type is None:
            raise RoomTypeNotFound()
        lodging = await LodgingRepository(uow.session).get(room_type.lodging_id)
        if lodging is None or not (principal.is_admin or lodging.host_id == principal.user_id):
            raise RoomTypeNotFound()
        return room_type, lodging

    async def create(self, principal: Principal, data: LodgingCreate) -> LodgingRead:
        now = utcnow()
        async with self._uow() as uow:
            repo = LodgingRepository(uow.session)
            lodging = Lodging(
                id=new_id(),
                host_id=principal.user_id,
                rating_sum=0,
                review_count=0,
                rating_avg=None,
                created_at=now,
                updated_at=now,
            )
            _apply_lodging_fields(lodging, data.model_dump(mode="python"))
            repo.add(lodging)
            await repo.replace_amenities(lodging.id, lodging.amenities)
            uow.emit(events.LodgingCreated(lodging_id=lodging.id, host_id=lodging.host_id))
            await uow.commit()
        await self._cache.invalidate(lodging.id)
        return lodging_read(lodging)

    async def list_own(self, principal: Principal, paging: PageParams) -> Page[LodgingRead]:
        async with self._uow() as uow:
            rows, total = await LodgingRepository(uow.session).list_for_host(
                None if principal.is_admin else principal.user_id,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[LodgingRead].of(rows, total, paging, lodging_read)

    async def get_own(self, principal: Principal, lodging_id: uuid.UUID) -> LodgingDetail:
        async with self._uow() as uow:
            lodging = await self._owned_lodging(uow, principal, lodging_id, for_update=False)
            room_types = await LodgingRepository(uow.session).room_types_of([lodging.id])
        return LodgingDetail(
            **lodging_read(lodging).model_dump(), room_types=[room_type_read(r) for r in room_types]
        )

    async def update(
        self, principal: Principal, lodging_id: uuid.UUID, data: LodgingUpdate
    ) -> LodgingRead:
        fields = data.model_dump(mode="python", exclude_unset=True)
        if any(v is None for v in fields.values()):
            fields = {k: v for k, v in fields.items() if v is not None}
        async with self._uow() as uow:
            lodging = await self._owned_lodging(uow, principal, lodging_id, for_update=True)
            _apply_lodging_fields(lodging, fields)
            if "amenities" in fields:
                await LodgingRepository(uow.session).replace_amenities(
                    lodging.id, lodging.amenities
                )
            lodging.updated_at = utcnow()
            uow.emit(events.LodgingUpdated(lodging_id=lodging.id, host_id=lodging.host_id))
            await uow.commit()
        await self._cache.invalidate(lodging.id)
        return lodging_read(lodging)

    async def delete(self, principal: Principal, lodging_id: uuid.UUID) -> None:
        today = seoul_today()
        async with self._uow() as uow:
            repo = LodgingRepository(uow.session)
            lodging = await self._owned_lodging(uow, principal, lodging_id, for_update=True)
            if await repo.has_bookings_from(today=today, lodging_id=lodging.id):
                raise LodgingHasBookings("Cancel or wait out the upcoming reservations first")
            await repo.close_future_nights(today=today, lodging_id=lodging.id)
            lodging.deleted_at = utcnow()
            uow.emit(events.LodgingDeleted(lodging_id=lodging.id, host_id=lodging.host_id))
            await uow.commit()
        await self._cache.invalidate(lodging.id)

    async def add_room_type(
        self, principal: Principal, lodging_id: uuid.UUID, data: RoomTypeCreate
    ) -> RoomTypeRead:
        async with self._uow() as uow:
            lodging = await self._owned_lodging(uow, principal, lodging_id, for_update=True)
            room_type = RoomType(
                id=new_id(),
                lodging_id=lodging.id,
                name=data.name,
                capacity=data.capacity,
                total_rooms=data.total_rooms,
                created_at=utcnow(),
            )
            LodgingRepository(uow.session).add(room_type)
            uow.emit(events.RoomTypeChanged(lodging_id=lodging.id, room_type_id=room_type.id))
            await uow.commit()
        await self._cache.invalidate(lodging.id)
        return room_type_read(room_type)

    async def room_type(self, principal: Principal, room_type_id: uuid.UUID) -> RoomTypeRead:
        """One room type of the principal's (any, for an admin); 404 otherwise."""
        async with self._uow() as uow:
            room_type, _ = await self._owned_room_type(
                uow, principal, room_type_id, for_update=False
            )
        return room_type_read(room_type)

    async def update_room_type(
        self, principal: Principal, room_type_id: uuid.UUID, data: RoomTypeUpdate
    ) -> RoomTypeRead:
        async with self._uow() as uow:
            room_type, lodging = await self._owned_room_type(uow, principal, room_type_id)
            if data.name is not None:
                room_type.name = data.name
            if data.capacity is not None:
                room_type.capacity = data.capacity
            if data.total_rooms is not None and data.total_rooms != room_type.total_rooms:
                if data.total_rooms < room_type.total_rooms:
                    await self._shrink_nights(uow, room_type, data.total_rooms)
                room_type.total_rooms = data.total_rooms
            uow.emit(events.RoomTypeChanged(lodging_id=lodging.id, room_type_id=room_type.id))
            await uow.commit()
        await self._cache.invalidate(lodging.id)
        return room_type_read(room_type)

    async def _shrink_nights(self, uow: UnitOfWork, room_type: RoomType, rooms: int) -> None:
        """Fewer rooms: upcoming nights offering more are cut down, unless bookings need them."""
        # Every upcoming night, however far ahead it was opened (and no date arithmetic that
        # fails on 29 February).
        nights = await LodgingRepository(uow.session).nights(
            [room_type.id], seoul_today(), None, for_update=True
        )
        for night in nights:
            if night.total <= rooms:
                continue
            if night.held + night.sold > rooms:
                raise InventoryConflict(
                    f"{night.date} has {night.held + night.sold} rooms booked; "
                    f"cannot cut to {rooms}"
                )
            night.total = rooms

    async def delete_room_type(self, principal: Principal, room_type_id: uuid.UUID) -> None:
        today = seoul_today()
        async with self._uow() as uow:
            room_type, lodging = await self._owned_room_type(uow, principal, room_type_id)
            repo = LodgingRepository(uow.session)
            if await repo.has_bookings_from(today=today, room_type_id=room_type.id):
                raise LodgingHasBookings("Upcoming nights of this room type have bookings")
            await repo.close_future_nights(today=today, room_type_id=room_type.id)
            room_type.deleted_at = utcnow()
            uow.emit(
                events.RoomTypeChanged(
                    lodging_id=lodging.id, room_type_id=room_type.id, deleted=True
                )
            )
            await uow.commit()
        await self._cache.invalidate(lodging.id)

    async def update_calendar(
        self, principal: Principal, room_type_id: uuid.UUID, data: CalendarUpdate
    ) -> HostCalendar:
        if data.start < seoul_today():
            raise InvalidDates("start must not be in the past")
        async with self._uow() as uow:
            room_type, lodging = await self._owned_room_type(uow, principal, room_type_id)
            if data.total_rooms is not None and data.total_rooms > room_type.total_rooms:
                raise InventoryExceedsRooms(
                    f"room type has {room_type.total_rooms} rooms; asked for {data.total_rooms}"
                )
            repo = LodgingRepository(uow.session)
            existing = {
                n.date: n
                for n in await repo.nights([room_type.id], data.start, data.end, for_update=True)
            }
            changed: list[Night] = []
            for day in each_night(data.start, data.end):
                night = existing.get(day)
                if night is None:
                    night = self._open_night(room_type, day, data)
                    repo.add(night)
                else:
                    self._change_night(night, day, data)
                changed.append(night)
            uow.emit(
                events.CalendarChanged(
                    lodging_id=lodging.id,
                    room_type_id=room_type.id,
                    start=data.start,
                    end=data.end,
                )
            )
            await uow.commit()
        await self._cache.invalidate(lodging.id)
        return HostCalendar(
            room_type_id=room_type.id, month="", days=[host_night(n) for n in changed]
        )

    @staticmethod
    def _open_night(room_type: RoomType, day: Any, data: CalendarUpdate) -> Night:
        if data.price is None:
            raise PriceRequired(f"{day} is not open yet: give a price to open it")
        min_stay, max_stay = data.min_stay or 1, data.max_stay or 30
        if min_stay > max_stay:
            raise InvalidDates(f"{day}: min_stay {min_stay} would exceed max_stay {max_stay}")
        return Night(
            room_type_id=room_type.id,
            date=day,
            lodging_id=room_type.lodging_id,
            price=nightly_price(day, price=data.price, weekend_price=data.weekend_price),
            total=room_type.total_rooms if data.total_rooms is None else data.total_rooms,
            held=0,
            sold=0,
            closed=bool(data.closed),
            min_stay=min_stay,
            max_stay=max_stay,
        )

    @staticmethod
    def _change_night(night: Night, day: Any, data: CalendarUpdate) -> None:
        if data.price is not None:
            night.price = nightly_price(day, price=data.price, weekend_price=data.weekend_price)
        elif data.weekend_price is not None:
            night.price = nightly_price(day, price=night.price, weekend_price=data.weekend_price)
        if data.total_rooms is not None:
            if data.total_rooms < night.held + night.sold:
                raise InventoryConflict(
                    f"{day} has {night.held + night.sold} rooms booked; "
                    f"cannot offer only {data.total_rooms}"
                )
            night.total = data.total_rooms
        if data.closed is not None:
            night.closed = data.closed
        if data.min_stay is not None:
            night.min_stay = data.min_stay
        if data.max_stay is not None:
            night.max_stay = data.max_stay
        if night.min_stay > night.max_stay:
            raise InvalidDates(f"{day}: min_stay would exceed max_stay")

    async def host_calendar(
        self, principal: Principal, room_type_id: uuid.UUID, month: str
    ) -> HostCalendar:
        start, end = month_range(month)
        async with self._uow() as uow:
            room_type, _ = await self._owned_room_type(uow, principal, room_type_id)
            nights = await LodgingRepository(uow.session).nights([room_type.id], start, end)
        return HostCalendar(
            room_type_id=room_type.id, month=month, days=[host_night(n) for n in nights]
        )
