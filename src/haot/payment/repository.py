"""Named queries of the payment context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from haot.payment.models import Payment, Refund, WebhookReceipt
from haot.platform.db import insert_unless_present

_PAYMENTS = cast(Table, Payment.__table__)


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Payment | Refund | WebhookReceipt) -> None:
        self.session.add(row)

    async def insert_unless_reserved(self, values: dict[str, Any]) -> bool:
        """Insert a payment unless its reservation has one already (a payment being created
        again, or a give-up's FAILED fence): True when this one was inserted."""
        statement = insert_unless_present(
            self.session.get_bind().dialect.name, _PAYMENTS, ("reservation_id",)
        )
        return (await self.session.execute(statement, values)).first() is not None

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        statement = select(Payment).where(Payment.id == payment_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def get_by_reservation(
        self, reservation_id: uuid.UUID, *, for_update: bool = False
    ) -> Payment | None:
        statement = select(Payment).where(Payment.reservation_id == reservation_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def transition(
        self, payment_id: str, *, from_status: str, to_status: str, **values: Any
    ) -> bool:
        """Compare-and-set on status: of two concurrent webhooks, exactly one moves it."""
        result = await self.session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == from_status)
            .values(status=to_status, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def search(
        self,
        *,
        user_id: uuid.UUID | None,
        status: str | None,
        reservation_id: uuid.UUID | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Payment], int]:
        conditions: list[ColumnElement[bool]] = []
        if user_id is not None:
            conditions.append(Payment.user_id == user_id)
        if status is not None:
            conditions.append(Payment.status == status)
        if reservation_id is not None:
            conditions.append(Payment.reservation_id == reservation_id)
        total = (
            await self.session.execute(select(func.count()).select_from(Payment).where(*conditions))
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(Payment)
                .where(*conditions)
                .order_by(Payment.created_at.desc(), Payment.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)

    async def stale_ready(self, *, older_than: datetime, limit: int) -> Sequence[str]:
        """READY payments the reconciler should re-query, claimed so parallel workers split them."""
        statement = (
            select(Payment.id)
            .where(Payment.status == "READY", Payment.updated_at < older_than)
            .order_by(Payment.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def due_rechecks(self, *, now: datetime, limit: int) -> Sequence[Payment]:
        """Given-up payments whose next look at the gateway is due."""
        statement = (
            select(Payment)
            .where(
                Payment.status == "FAILED",
                Payment.recheck_at.is_not(None),
                Payment.recheck_at <= now,
            )
            .order_by(Payment.recheck_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def refund_by_key(self, key: str) -> Refund | None:
        return (await self.session.scalars(select(Refund).where(Refund.key == key))).one_or_none()

    async def pending_refunds(self, *, limit: int) -> Sequence[Refund]:
        statement = (
            select(Refund)
            .where(Refund.status == "PENDING")
            .order_by(Refund.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def mark_receipt_processed(self, webhook_id: str, at: datetime) -> None:
        await self.session.execute(
            update(WebhookReceipt)
            .where(WebhookReceipt.webhook_id == webhook_id, WebhookReceipt.processed_at.is_(None))
            .values(processed_at=at)
        )

    async def pending_refund_total(self, payment_id: str) -> int:
        """The amount of the payment's refunds asked for and not executed yet."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.payment_id == payment_id, Refund.status == "PENDING"
            )
        )
        return int(total or 0)
