"""Inventory for reservations: quote a stay, hold every night of it (all or none), confirm, release.

A hold locks the stay's night rows in date order (so two overlapping holds queue instead of
deadlocking), checks every night, then moves ``held`` with a guarded UPDATE whose row count must
equal the number of nights; the table's CHECK (held + sold <= total) backs both. Every call is keyed
by the reservation id and idempotent, so the saga may retry or compensate blindly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, select, update
from sqlalchemy.orm import Bundle

from haot.lodging.cache import LodgingCache
from haot.lodging.domain import RefundRule, nights_of, stay_problem
from haot.lodging.errors import InvalidStay, LodgingNotFound, RoomTypeNotFound
from haot.lodging.models import Hold, Lodging, Night, RoomType
from haot.platform.clock import seoul_today, utcnow
from haot.platform.db import insert_unless_present
from haot.platform.errors import Conflict
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory


class SoldOut(Conflict):
    code = "sold_out"
    title = "Not every night of the stay is available"


class HoldReleased(Conflict):
    code = "hold_released"
    title = "The hold was already released"


HELD, SOLD, RELEASED = "HELD", "SOLD", "RELEASED"


class _HeldBefore(Exception):
    """The reservation has a hold on record already (found by the hold's insert)."""

    def __init__(self, *, joined: bool) -> None:
        super().__init__("held before")
        self.joined = joined


@dataclass(frozen=True, slots=True)
class StayQuote:
    lodging_id: uuid.UUID
    host_id: uuid.UUID
    room_type_id: uuid.UUID
    lodging_name: str
    room_type_name: str
    check_in: date
    check_out: date
    nights: list[tuple[date, int]]
    cancellation_policy: list[RefundRule]

    @property
    def subtotal(self) -> int:
        return sum(price for _, price in self.nights)


class Inventory:
    def __init__(self, *, uow: UnitOfWorkFactory, cache: LodgingCache | None = None) -> None:
        self._uow = uow
        self._cache = cache

    def _announce(self, uow: UnitOfWork, lodging_id: uuid.UUID, room_type_id: uuid.UUID) -> None:
        """Tell the offer indexes and the lodging's cached calendars, once the unit (or the
        booking it joined) has committed."""
        cache = self._cache
        if cache is not None:
            uow.after_commit(lambda: cache.inventory_moved(lodging_id, room_type_id), wait=True)

    async def _stay(
        self,
        uow: UnitOfWork,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> tuple[Lodging, RoomType, list[Night]]:
        """The stay's lodging, room type and nights, or the error that says why it cannot be
        had."""
        session = uow.session
        room_type = (
            await session.scalars(
                select(RoomType).where(RoomType.id == room_type_id, RoomType.deleted_at.is_(None))
            )
        ).one_or_none()
        if room_type is None:
            raise RoomTypeNotFound()
        lodging = (
            await session.scalars(
                select(Lodging).where(
                    Lodging.id == room_type.lodging_id, Lodging.deleted_at.is_(None)
                )
            )
        ).one_or_none()
        if lodging is None:
            raise LodgingNotFound()
        _check_party_and_length(lodging, room_type, check_in, check_out, guests)
        statement = (
            select(Night)
            .where(
                Night.room_type_id == room_type_id,
                Night.date >= check_in,
                Night.date < check_out,
            )
            .order_by(Night.date)
        )
        nights = list((await session.scalars(statement)).all())
        _check_nights(nights, check_in, check_out, set())
        return lodging, room_type, nights

    @staticmethod
    async def _why_not(
        uow: UnitOfWork, room_type_id: uuid.UUID, check_in: date, check_out: date, taken: set[date]
    ) -> None:
        """Raises the error naming the night that stopped a hold, from the nights as they are
        now (plain rows: no ORM objects for an answer that is a refusal)."""
        rows = (
            await uow.session.execute(
                _NIGHTS_OF_STAY,
                {"p_room_type_id": room_type_id, "p_check_in": check_in, "p_check_out": check_out},
            )
        ).all()
        _check_nights(rows, check_in, check_out, taken)

    @staticmethod
    def _quote(lodging: Lodging, room_type: RoomType, nights: list[Night]) -> StayQuote:
        return _stay_quote(
            lodging,
            room_type,
            nights[0].date,
            nights[-1].date + timedelta(days=1),
            [(n.date, n.price) for n in nights],
        )

    async def quote(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> StayQuote:
        async with self._uow() as uow:
            lodging, room_type, nights = await self._stay(
                uow, room_type_id, check_in, check_out, guests
            )
        return self._quote(lodging, room_type, nights)

    async def check_available(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> None:
        """Raise what ``hold`` would raise for a stay whose nights cannot be had right now
        (sold out, closed, outside a night's stay rules). One unlocked read: a pass promises
        nothing (``hold`` decides), but a refusal spares the booking its lock, its transaction and
        its writes, which is what most answers in a rush for the last rooms are. Silent wherever
        ``hold`` would answer otherwise (no such room type, a party that does not fit, a night
        never opened), so the answer never depends on whether this ran."""
        async with self._uow.read() as connection:
            nights = (
                await connection.execute(
                    _NIGHTS_OF_BOOKABLE_STAY,
                    {
                        "p_room_type_id": room_type_id,
                        "p_check_in": check_in,
                        "p_check_out": check_out,
                        "p_guests": guests,
                        "p_length": (check_out - check_in).days,
                    },
                )
            ).all()
        if len(nights) == (check_out - check_in).days:
            _check_nights(nights, check_in, check_out, set())

    async def hold(
        self,
        reservation_id: uuid.UUID,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> StayQuote:
        """Hold one room for every night of the stay, or raise ``SoldOut`` holding nothing.
        Holding again for the same reservation returns the existing hold's quote.

        The common case costs three statements: the room type with its lodging, a guarded
        UPDATE ... RETURNING that takes a room on every night that is open, free and allows the
        stay's length, and the hold's insert, which finds out (on its key) whether this
        reservation held before. Only when the UPDATE misses a night does a fourth look say why
        (sold out, closed, stay rules)."""
        try:
            return await self._take_rooms(reservation_id, room_type_id, check_in, check_out, guests)
        except _HeldBefore as held_before:
            if held_before.joined:  # a shared transaction never meets its own fresh id twice
                raise HoldReleased() from None
            # This reservation held before (a retried saga step) or was given up (a tombstone):
            # the rooms just taken went back with the rollback; answer from the hold on record.
            return await self._existing_hold(reservation_id)

    async def _take_rooms(
        self,
        reservation_id: uuid.UUID,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> StayQuote:
        async with self._uow() as uow:
            session = uow.session
            found = (
                await session.execute(_ROOM_AND_LODGING, {"room_type_id": room_type_id})
            ).first()
            if found is None:
                raise RoomTypeNotFound()
            room_type, lodging = found.room_type, found.lodging
            _check_party_and_length(lodging, room_type, check_in, check_out, guests)
            length = (check_out - check_in).days
            taken = (
                await session.execute(
                    _TAKE_A_ROOM,
                    {
                        "p_room_type_id": room_type_id,
                        "p_check_in": check_in,
                        "p_check_out": check_out,
                        "p_length": length,
                    },
                )
            ).all()
            if len(taken) != length:
                if (await session.execute(_HOLD_EXISTS, {"p_id": reservation_id})).first():
                    # Its own earlier hold may have taken the last room: answer from that.
                    raise _HeldBefore(joined=uow.joined)
                # Why not? The nights as they are now (this transaction's partial UPDATE rolls
                # back with it: the caller's unit of work never commits after an exception).
                await self._why_not(
                    uow, room_type_id, check_in, check_out, {row.date for row in taken}
                )
                raise SoldOut()
            now = utcnow()
            inserted = (
                await session.execute(
                    insert_unless_present(
                        session.get_bind().dialect.name, _HOLDS, ("reservation_id",)
                    ),
                    {
                        "reservation_id": reservation_id,
                        "room_type_id": room_type_id,
                        "lodging_id": lodging.id,
                        "check_in": check_in,
                        "check_out": check_out,
                        "rooms": 1,
                        "status": HELD,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            ).first()
            if inserted is None:
                raise _HeldBefore(joined=uow.joined)  # rolls the rooms just taken back
            self._announce(uow, lodging.id, room_type_id)
            await uow.commit()
        nights = sorted((row.date, row.price) for row in taken)
        return _stay_quote(lodging, room_type, check_in, check_out, nights)

    async def _existing_hold(self, reservation_id: uuid.UUID) -> StayQuote:
        async with self._uow() as uow:
            existing = await uow.session.get(Hold, reservation_id)
            if existing is None or existing.status == RELEASED:
                raise HoldReleased()
            return self._quote(*await self._held_stay(uow, existing))

    async def _held_stay(
        self, uow: UnitOfWork, hold: Hold
    ) -> tuple[Lodging, RoomType, list[Night]]:
        session = uow.session
        room_type = await session.get(RoomType, hold.room_type_id)
        lodging = await session.get(Lodging, hold.lodging_id)
        if room_type is None or lodging is None:
            raise RoomTypeNotFound()
        nights = list(
            (
                await session.scalars(
                    select(Night)
                    .where(
                        Night.room_type_id == hold.room_type_id,
                        Night.date >= hold.check_in,
                        Night.date < hold.check_out,
                    )
                    .order_by(Night.date)
                )
            ).all()
        )
        return lodging, room_type, nights

    async def move(self, uow: UnitOfWork, reservation_id: uuid.UUID, *, to: str) -> bool:
        """HELD → SOLD (confirm) or HELD/SOLD → RELEASED, inside the caller's unit of work (an
        event consumer's, so the inbox row and the effect commit together). True when something
        changed. Releasing a hold that does not exist yet leaves a RELEASED tombstone, so a hold
        arriving late for a reservation that was already given up is refused (fencing)."""
        session = uow.session
        statement = select(Hold).where(Hold.reservation_id == reservation_id).with_for_update()
        hold = (await session.scalars(statement)).one_or_none()
        now = utcnow()
        if hold is None:
            if to == RELEASED:
                session.add(_tombstone(reservation_id, now))
            return False
        if hold.status == to:
            return False
        if hold.status == RELEASED:
            raise HoldReleased()
        if to == SOLD and hold.status != HELD:
            return False
        if to == SOLD:
            values = {"held": Night.held - hold.rooms, "sold": Night.sold + hold.rooms}
        elif hold.status == HELD:
            values = {"held": Night.held - hold.rooms}
        else:
            values = {"sold": Night.sold - hold.rooms}
        await session.execute(
            update(Night)
            .where(
                Night.room_type_id == hold.room_type_id,
                Night.date.in_(
                    _nights_in_date_order(hold.room_type_id, hold.check_in, hold.check_out)
                ),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        hold.status = to
        hold.updated_at = now
        self._announce(uow, hold.lodging_id, hold.room_type_id)
        return True

    async def confirm(self, reservation_id: uuid.UUID) -> bool:
        """Held rooms become sold. Raises ``HoldReleased`` when the hold is gone (fencing)."""
        async with self._uow() as uow:
            changed = await self.move(uow, reservation_id, to=SOLD)
            await uow.commit()
        return changed

    async def release(self, reservation_id: uuid.UUID) -> bool:
        """Give the rooms back (expired, failed or cancelled); idempotent."""
        async with self._uow() as uow:
            try:
                changed = await self.move(uow, reservation_id, to=RELEASED)
            except HoldReleased:
                return False
            await uow.commit()
        return changed


class _NightState(Protocol):
    date: date
    total: int
    held: int
    sold: int
    closed: bool
    min_stay: int
    max_stay: int


def _check_nights(
    nights: Sequence[_NightState], check_in: date, check_out: date, taken: set[date]
) -> None:
    """Raises the error naming the first night that cannot be had. ``taken``: nights on which
    this transaction already took one room (not counted against availability, so the error
    names the night that really is the problem)."""
    stay_length = (check_out - check_in).days
    if [n.date for n in nights] != nights_of(check_in, check_out):
        raise SoldOut("Some nights of the stay are not open")
    for night in nights:
        free = night.total - night.held - night.sold + (1 if night.date in taken else 0)
        if night.closed or free < 1:
            raise SoldOut(f"{night.date} is sold out")
        if not night.min_stay <= stay_length <= night.max_stay:
            raise InvalidStay(
                f"{night.date} needs a stay of {night.min_stay} to {night.max_stay} nights"
            )


class _RoomFacts(Protocol):
    id: uuid.UUID
    name: str
    capacity: int


class _LodgingFacts(Protocol):
    id: uuid.UUID
    host_id: uuid.UUID
    name: str
    max_guests: int
    max_nights: int
    cancellation_policy: list[dict[str, Any]]


def _check_party_and_length(
    lodging: _LodgingFacts, room_type: _RoomFacts, check_in: date, check_out: date, guests: int
) -> None:
    if problem := stay_problem(
        check_in, check_out, today=seoul_today(), max_nights=lodging.max_nights
    ):
        raise InvalidStay(problem)
    if guests > room_type.capacity or guests > lodging.max_guests:
        most = min(room_type.capacity, lodging.max_guests)
        raise InvalidStay(f"this room takes at most {most} guests")


def _stay_quote(
    lodging: _LodgingFacts,
    room_type: _RoomFacts,
    check_in: date,
    check_out: date,
    nights: list[tuple[date, int]],
) -> StayQuote:
    return StayQuote(
        lodging_id=lodging.id,
        host_id=lodging.host_id,
        room_type_id=room_type.id,
        lodging_name=lodging.name,
        room_type_name=room_type.name,
        check_in=check_in,
        check_out=check_out,
        nights=nights,
        cancellation_policy=[
            RefundRule(days_before=t["days_before"], refund_percent=t["refund_percent"])
            for t in lodging.cancellation_policy
        ],
    )


_HOLDS = cast(Table, Hold.__table__)


_NIGHTS = cast(Table, Night.__table__)


def _nights_in_date_order(
    room_type_id: ColumnElement[uuid.UUID] | uuid.UUID,
    start: ColumnElement[date] | date,
    end: ColumnElement[date] | date,
    *,
    bookable_for: ColumnElement[int] | None = None,
) -> Select[date]:
    """The dates of one room type's nights in [start, end), locked in date order; with
    ``bookable_for`` (a stay length), only nights open, with a free room, that allow the length.

    Every statement that changes several nights of a stay takes its rows through this: a plain
    multi-row UPDATE locks rows in whatever order its plan visits them (a bitmap heap scan goes
    by physical position, which updates keep moving), so two overlapping stays could each hold a
    night the other waits for: a deadlock, answered 500. Locked in date order, they queue."""
    locked = _NIGHTS.alias("locked").c
    guards: list[ColumnElement[bool]] = [
        locked.room_type_id == room_type_id,
        locked.date >= start,
        locked.date < end,
    ]
    if bookable_for is not None:
        guards += [
            locked.closed.is_(False),
            locked.held + locked.sold < locked.total,
            locked.min_stay <= bookable_for,
            locked.max_stay >= bookable_for,
        ]
    return select(locked.date).where(*guards).order_by(locked.date).with_for_update()


# Built once: statements are the same for every hold, only their parameters change. The hold
# reads plain columns (no ORM entities to build and track for a row it only looks at).
_ROOM_AND_LODGING: Select[Any, Any] = (
    select(
        Bundle("room_type", RoomType.id, RoomType.name, RoomType.capacity),
        Bundle(
            "lodging",
            Lodging.id,
            Lodging.host_id,
            Lodging.name,
            Lodging.max_guests,
            Lodging.max_nights,
            Lodging.cancellation_policy,
        ),
    )
    .join(Lodging, Lodging.id == RoomType.lodging_id)
    .where(
        RoomType.id == bindparam("room_type_id"),
        RoomType.deleted_at.is_(None),
        Lodging.deleted_at.is_(None),
    )
)
_HOLD_EXISTS = select(_HOLDS.c.reservation_id).where(_HOLDS.c.reservation_id == bindparam("p_id"))
_NIGHTS_OF_STAY = (
    select(
        _NIGHTS.c.date,
        _NIGHTS.c.total,
        _NIGHTS.c.held,
        _NIGHTS.c.sold,
        _NIGHTS.c.closed,
        _NIGHTS.c.min_stay,
        _NIGHTS.c.max_stay,
    )
    .where(
        _NIGHTS.c.room_type_id == bindparam("p_room_type_id"),
        _NIGHTS.c.date >= bindparam("p_check_in"),
        _NIGHTS.c.date < bindparam("p_check_out"),
    )
    .order_by(_NIGHTS.c.date)
)
_ROOM_TYPES = cast(Table, RoomType.__table__)
_LODGINGS = cast(Table, Lodging.__table__)
# The nights of a stay whose room type and lodging are live and take the party and the length.
_NIGHTS_OF_BOOKABLE_STAY = _NIGHTS_OF_STAY.join_from(
    _NIGHTS, _ROOM_TYPES, _ROOM_TYPES.c.id == _NIGHTS.c.room_type_id
).where(
    _ROOM_TYPES.c.deleted_at.is_(None),
    _ROOM_TYPES.c.capacity >= bindparam("p_guests"),
    _ROOM_TYPES.c.lodging_id.in_(
        select(_LODGINGS.c.id).where(
            _LODGINGS.c.id == _ROOM_TYPES.c.lodging_id,
            _LODGINGS.c.deleted_at.is_(None),
            _LODGINGS.c.max_guests >= bindparam("p_guests"),
            _LODGINGS.c.max_nights >= bindparam("p_length"),
        )
    ),
)
# A Core statement on the table, not the ORM entity: the ORM's bulk-update path (session
# synchronisation, compile state) cost more than the statement itself on the hottest write.
_TAKE_A_ROOM = (
    update(_NIGHTS)
    .where(
        _NIGHTS.c.room_type_id == bindparam("p_room_type_id"),
        _NIGHTS.c.date.in_(
            _nights_in_date_order(
                bindparam("p_room_type_id"),
                bindparam("p_check_in"),
                bindparam("p_check_out"),
                bookable_for=bindparam("p_length"),
            )
        ),
        # Checked again on the row being changed; the CHECK constraints back it too.
        _NIGHTS.c.held + _NIGHTS.c.sold < _NIGHTS.c.total,
    )
    .values(held=_NIGHTS.c.held + 1)
    .returning(_NIGHTS.c.date, _NIGHTS.c.price)
)


def _tombstone(reservation_id: uuid.UUID, now: datetime) -> Hold:
    nowhere = date(1970, 1, 1)
    return Hold(
        reservation_id=reservation_id,
        room_type_id=reservation_id,
        lodging_id=reservation_id,
        check_in=nowhere,
        check_out=nowhere,
        rooms=0,
        status=RELEASED,
        created_at=now,
        updated_at=now,
    )
