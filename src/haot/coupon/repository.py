"""Named queries of the coupon context."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.coupon.models import Claim, Coupon, CouponEvent, ReservationFence, UserCoupon


class CouponRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Coupon | CouponEvent | UserCoupon | Claim | ReservationFence) -> None:
        self.session.add(row)

    async def insert_all(self, rows: Sequence[UserCoupon] | Sequence[Claim]) -> None:
        """New rows of one table in one multi-row INSERT, without tracking them in the session
        (a batch of claims is hundreds of rows that nothing reads back before commit)."""
        if not rows:
            return
        model = type(rows[0])
        columns = [column.key for column in model.__table__.columns]
        await self.session.execute(
            insert(model), [{key: getattr(row, key) for key in columns} for row in rows]
        )

    async def get_coupon(self, coupon_id: uuid.UUID) -> Coupon | None:
        return await self.session.get(Coupon, coupon_id)

    async def coupons_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Coupon]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(Coupon).where(Coupon.id.in_(set(ids))))
        return {row.id: row for row in rows}

    async def list_coupons(
        self, *, q: str | None, active: bool | None, offset: int, limit: int
    ) -> tuple[Sequence[Coupon], int]:
        conditions: list[ColumnElement[bool]] = []
        if q:
            conditions.append(func.lower(Coupon.name).like(f"%{q.lower()}%"))
        if active is not None:
            conditions.append(Coupon.active.is_(active))
        return await self._page(Coupon, conditions, Coupon.created_at, offset, limit)

    async def _page(
        self, model: Any, conditions: list[ColumnElement[bool]], order: Any, offset: int, limit: int
    ) -> tuple[Sequence[Any], int]:
        total = (
            await self.session.execute(select(func.count()).select_from(model).where(*conditions))
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(model)
                .where(*conditions)
                .order_by(order.desc(), model.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)

    async def get_event(
        self, event_id: uuid.UUID, *, for_update: bool = False
    ) -> CouponEvent | None:
        statement = select(CouponEvent).where(CouponEvent.id == event_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def list_events(
        self,
        *,
        live_at: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[CouponEvent], int]:
        """All events, or (``live_at``) those not yet closed: open and upcoming."""
        conditions: list[ColumnElement[bool]] = []
        if live_at is not None:
            conditions += [CouponEvent.closed_reason.is_(None), CouponEvent.ends_at > live_at]
        return await self._page(CouponEvent, conditions, CouponEvent.starts_at, offset, limit)

    async def events_to_serve(self, now: datetime) -> Sequence[CouponEvent]:
        """Events whose admission state Redis must hold: not closed and not over."""
        return (
            await self.session.scalars(
                select(CouponEvent).where(
                    CouponEvent.closed_reason.is_(None), CouponEvent.ends_at > now
                )
            )
        ).all()

    async def events_past_end(self, now: datetime) -> Sequence[CouponEvent]:
        return (
            await self.session.scalars(
                select(CouponEvent)
                .where(CouponEvent.closed_reason.is_(None), CouponEvent.ends_at <= now)
                .with_for_update(skip_locked=True)
            )
        ).all()

    async def take_stock(self, event_id: uuid.UUID, count: int = 1) -> int | None:
        """The database's own cap: ``issued`` grows by ``count`` only if it stays within
        ``quantity``. Returns ``issued`` after the increment, or None if it was refused."""
        result = await self.session.execute(
            update(CouponEvent)
            .where(
                CouponEvent.id == event_id,
                or_(
                    CouponEvent.quantity.is_(None),
                    CouponEvent.issued + count <= CouponEvent.quantity,
                ),
            )
            .values(issued=CouponEvent.issued + count)
            .returning(CouponEvent.issued)
            .execution_options(synchronize_session=False)
        )
        issued: int | None = result.scalar_one_or_none()
        return issued

    async def event_user_ids(self, event_id: uuid.UUID) -> list[str]:
        rows = await self.session.scalars(
            select(UserCoupon.user_id).where(UserCoupon.event_id == event_id)
        )
        return [str(r) for r in rows]

    async def holders_among(
        self, event_id: uuid.UUID, user_ids: Collection[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Those of ``user_ids`` who already hold a coupon of the event."""
        if not user_ids:
            return set()
        rows = await self.session.scalars(
            select(UserCoupon.user_id).where(
                UserCoupon.event_id == event_id, UserCoupon.user_id.in_(set(user_ids))
            )
        )
        return set(rows)

    async def get_user_coupon(
        self, user_coupon_id: uuid.UUID, *, for_update: bool = False
    ) -> UserCoupon | None:
        statement = select(UserCoupon).where(UserCoupon.id == user_coupon_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def user_coupon_by_reservation(
        self, reservation_id: uuid.UUID, *, for_update: bool = True
    ) -> UserCoupon | None:
        statement = select(UserCoupon).where(UserCoupon.reservation_id == reservation_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).first()

    async def user_coupons(
        self, user_id: uuid.UUID, *, status: str | None, offset: int, limit: int
    ) -> tuple[Sequence[UserCoupon], int]:
        conditions: list[ColumnElement[bool]] = [UserCoupon.user_id == user_id]
        if status is not None:
            conditions.append(UserCoupon.status == status)
        return await self._page(UserCoupon, conditions, UserCoupon.issued_at, offset, limit)

    async def get_claim(self, claim_id: str) -> Claim | None:
        return await self.session.get(Claim, claim_id)

    async def persisted_claim_ids(self, claim_ids: Collection[str]) -> set[str]:
        """Those of ``claim_ids`` that already have their row."""
        if not claim_ids:
            return set()
        rows = await self.session.scalars(select(Claim.id).where(Claim.id.in_(set(claim_ids))))
        return set(rows)

    async def expire_issued(self, now: datetime) -> int:
        result = await self.session.execute(
            update(UserCoupon)
            .where(UserCoupon.status == "ISSUED", UserCoupon.expires_at <= now)
            .values(status="EXPIRED", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
