"""Named queries of the reservation context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.platform.locks import lock_for_transaction
from haot.reservation.models import Reservation

_RESERVATIONS = cast(Table, Reservation.__table__)
_PENDING_AND_KEYED = select(
    select(func.count())
    .where(
        _RESERVATIONS.c.user_id == bindparam("p_user_id"),
        _RESERVATIONS.c.status == "PENDING",
    )
    .scalar_subquery()
    .label("pending"),
    select(_RESERVATIONS.c.id)
    .where(
        _RESERVATIONS.c.user_id == bindparam("p_user_id"),
        _RESERVATIONS.c.idempotency_key == bindparam("p_key"),
    )
    .scalar_subquery()
    .label("keyed"),
)


_KEYED = (
    Reservation.user_id == bindparam("p_user_id"),
    Reservation.idempotency_key == bindparam("p_key"),
)
_BY_KEY_ENTITY = select(Reservation).where(*_KEYED)
_BY_KEY_ROW = select(_RESERVATIONS).where(*_KEYED)


async def keyed_reservation(
    connection: AsyncConnection, user_id: uuid.UUID, key: str
) -> Row[Any] | None:
    """The guest's reservation made with this Idempotency-Key, as a plain row (a read on its own
    connection, outside any unit of work: ``UnitOfWorkFactory.read``)."""
    return (await connection.execute(_BY_KEY_ROW, {"p_user_id": user_id, "p_key": key})).first()


class ReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, reservation: Reservation) -> None:
        self.session.add(reservation)

    async def get(
        self, reservation_id: uuid.UUID, *, for_update: bool = False
    ) -> Reservation | None:
        statement = select(Reservation).where(Reservation.id == reservation_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Reservation | None:
        return (
            await self.session.scalars(_BY_KEY_ENTITY, {"p_user_id": user_id, "p_key": key})
        ).one_or_none()

    async def lock_guest(self, user_id: uuid.UUID) -> None:
        """Serialise this guest's bookings until the transaction ends: the pending cap counts
        rows and then inserts one, which two concurrent bookings must not interleave."""
        await lock_for_transaction(self.session, "reservation.pending", user_id)

    async def pending_and_keyed(
        self, user_id: uuid.UUID, key: str | None
    ) -> tuple[int, uuid.UUID | None]:
        """In one statement: the guest's pending reservations, and the id of the reservation the
        guest made with this Idempotency-Key, if any."""
        row = (
            await self.session.execute(_PENDING_AND_KEYED, {"p_user_id": user_id, "p_key": key})
        ).one()
        return int(row.pending), row.keyed

    async def search(
        self,
        *,
        user_id: uuid.UUID | None = None,
        host_id: uuid.UUID | None = None,
        lodging_id: uuid.UUID | None = None,
        status: str | None = None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Reservation], int]:
        conditions: list[ColumnElement[bool]] = []
        if user_id is not None:
            conditions.append(Reservation.user_id == user_id)
        if host_id is not None:
            conditions.append(Reservation.host_id == host_id)
        if lodging_id is not None:
            conditions.append(Reservation.lodging_id == lodging_id)
        if status is not None:
            conditions.append(Reservation.status == status)
        total = (
            await self.session.execute(
                select(func.count()).select_from(Reservation).where(*conditions)
            )
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(Reservation)
                .where(*conditions)
                .order_by(Reservation.created_at.desc(), Reservation.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)

    async def oldest_overdue_hold(self, *, now: datetime) -> datetime | None:
        """The earliest expiry among PENDING reservations already past it, or None."""
        statement = select(func.min(Reservation.expires_at)).where(
            Reservation.status == "PENDING", Reservation.expires_at < now
        )
        oldest: datetime | None = (await self.session.execute(statement)).scalar_one_or_none()
        return oldest

    async def claim_expired(self, *, now: datetime, limit: int) -> Sequence[Reservation]:
        """PENDING reservations past their expiry, locked; parallel workers take disjoint chunks."""
        statement = (
            select(Reservation)
            .where(Reservation.status == "PENDING", Reservation.expires_at < now)
            .order_by(Reservation.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def claim_finished_stays(self, *, today: date, limit: int) -> Sequence[Reservation]:
        statement = (
            select(Reservation)
            .where(Reservation.status == "CONFIRMED", Reservation.check_out <= today)
            .order_by(Reservation.check_out)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()
