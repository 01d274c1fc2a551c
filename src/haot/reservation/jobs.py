"""Scheduled reservation work: expire unpaid holds, complete finished stays. Both claim chunks
with SKIP LOCKED, so any number of workers can run them at once."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge

from haot.platform.clock import seoul_today, utcnow
from haot.platform.uow import UnitOfWorkFactory
from haot.reservation.domain import ReservationStatus
from haot.reservation.repository import ReservationRepository
from haot.reservation.service import move

PENDING_OVERDUE = Gauge(
    "haot_reservation_pending_overdue_seconds",
    "Seconds since the hold of the longest-overdue PENDING reservation expired (0: none overdue;"
    " expire-holds gives each up within 15 s)",
    multiprocess_mode="mostrecent",
)


async def measure_overdue_holds(uow_factory: UnitOfWorkFactory) -> None:
    """``haot_reservation_pending_overdue_seconds``, measured when Prometheus scrapes."""
    now = utcnow()
    async with uow_factory() as uow:
        oldest = await ReservationRepository(uow.session).oldest_overdue_hold(now=now)
    PENDING_OVERDUE.set((now - oldest).total_seconds() if oldest is not None else 0.0)


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
