"""Scheduled reservation work: expire unpaid holds, complete finished stays. Both claim chunks
with SKIP LOCKED, so any number of workers can run them at once."""

from __future__ import annotations

from datetime import datetime

from haot.platform.clock import seoul_today
from haot.platform.uow import UnitOfWorkFactory
from haot.reservation.domain import ReservationStatus
from haot.reservation.repository import ReservationRepository
from haot.reservation.service import move


async def expire_holds(uow_factory: UnitOfWorkFactory, *, now: datetime, chunk: int = 200) -> int:
    expired = 0
    while True:
        async with uow_factory() as uow:
            rows = await ReservationRepository(uow.session).claim_expired(now=now, limit=chunk)
            for row in rows:
                row.failure_reason = "payment not completed in time"
                move(uow, row, ReservationStatus.EXPIRED)
            await uow.commit()
        expired += len(rows)
        if len(rows) < chunk:
            return expired


async def complete_stays(uow_factory: UnitOfWorkFactory, *, now: datetime, chunk: int = 200) -> int:
    today = seoul_today(now)
    completed = 0
    while True:
        async with uow_factory() as uow:
            rows = await ReservationRepository(uow.session).claim_finished_stays(
                today=today, limit=chunk
            )
            for row in rows:
                move(uow, row, ReservationStatus.COMPLETED)
            await uow.commit()
        completed += len(rows)
        if len(rows) < chunk:
            return completed
