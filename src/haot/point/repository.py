"""Named queries of the point context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.point.models import Allocation, Entry, Hold, Lot


class PointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Lot | Hold | Allocation | Entry) -> None:
        self.session.add(row)

    async def live_lots_for_update(self, user_id: uuid.UUID, now: datetime) -> Sequence[Lot]:
        """The user's spendable lots, locked in a fixed order: concurrent spends of one user queue
        here instead of both seeing the same balance."""
        statement = (
            select(Lot)
            .where(Lot.user_id == user_id, Lot.remaining > 0, Lot.expires_at > now)
            .order_by(Lot.expires_at, Lot.created_at, Lot.id)
            .with_for_update()
        )
        return (await self.session.scalars(statement)).all()

    async def lots_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Lot]:
        """Lock the given lots in the same order as ``live_lots_for_update`` (expiry, creation, id):
        a release or refund locking them in another order deadlocks against a concurrent hold of
        the same user."""
        if not ids:
            return {}
        rows = await self.session.scalars(
            select(Lot)
            .where(Lot.id.in_(ids))
            .order_by(Lot.expires_at, Lot.created_at, Lot.id)
            .with_for_update()
        )
        return {lot.id: lot for lot in rows}

    async def lot_by_source(self, source: str) -> Lot | None:
        return (await self.session.scalars(select(Lot).where(Lot.source == source))).one_or_none()

    async def hold_for(self, reservation_id: uuid.UUID, *, for_update: bool = True) -> Hold | None:
        statement = select(Hold).where(Hold.reservation_id == reservation_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def allocations(self, hold_id: uuid.UUID) -> Sequence[Allocation]:
        return (
            await self.session.scalars(
                select(Allocation).where(Allocation.hold_id == hold_id).order_by(Allocation.lot_id)
            )
        ).all()

    async def summary(
        self, user_id: uuid.UUID, now: datetime, window: timedelta
    ) -> tuple[int, int, int, datetime | None]:
        """(spendable, held, expiring within ``window``, and the next moment the first and third
        change by the passage of time alone: a live lot expiring or entering the window)."""
        soon = now + window
        spendable, expiring, next_expiry, next_entering = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(Lot.remaining), 0),
                    func.coalesce(func.sum(Lot.remaining).filter(Lot.expires_at <= soon), 0),
                    func.min(Lot.expires_at),
                    func.min(Lot.expires_at).filter(Lot.expires_at > soon),
                ).where(Lot.user_id == user_id, Lot.remaining > 0, Lot.expires_at > now)
            )
        ).one()
        held = (
            await self.session.execute(
                select(func.coalesce(func.sum(Hold.amount), 0)).where(
                    Hold.user_id == user_id, Hold.status == "HELD"
                )
            )
        ).scalar_one()
        moments = [m for m in (next_expiry, next_entering and next_entering - window) if m]
        return int(spendable), int(held), int(expiring), min(moments, default=None)

    async def entries(
        self,
        *,
        user_id: uuid.UUID | None,
        type: str | None,
        since: datetime | None,
        until: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Entry], int]:
        conditions: list[ColumnElement[bool]] = []
        if user_id is not None:
            conditions.append(Entry.user_id == user_id)
        if type is not None:
            conditions.append(Entry.type == type)
        if since is not None:
            conditions.append(Entry.created_at >= since)
        if until is not None:
            conditions.append(Entry.created_at < until)
        total = (
            await self.session.execute(select(func.count()).select_from(Entry).where(*conditions))
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(Entry)
                .where(*conditions)
                .order_by(Entry.created_at.desc(), Entry.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)

    async def claim_expired_lots(self, now: datetime, limit: int) -> Sequence[Lot]:
        statement = (
            select(Lot)
            .where(Lot.expires_at <= now, Lot.remaining > 0)
            .order_by(Lot.expires_at, Lot.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def expired_totals(self, now: datetime) -> tuple[int, int]:
        lots, points = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Lot.remaining), 0)).where(
                    Lot.expires_at <= now, Lot.remaining > 0
                )
            )
        ).one()
        return int(lots), int(points)
