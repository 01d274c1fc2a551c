"""Point use cases. Every change locks the user's live lots first, so concurrent spends of one
user are serialised and the balance can never go below zero (the CHECK on ``remaining`` backs it).
Balances are cached per user under a generation that each committed change bumps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from haot.platform.cache import GenerationCache
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, InvalidInput
from haot.platform.ids import new_id
from haot.platform.redis import Redis
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams
from haot.point.domain import (
    AllocationView,
    EntryType,
    LotView,
    allocate,
    earned_points,
    place_refund,
    restored_expiry,
)
from haot.point.models import Allocation, Entry, Hold, Lot
from haot.point.repository import PointRepository
from haot.point.schemas import BalanceRead, DeductionCreate, EntryRead, GrantCreate

POINTS_EXPIRED = Counter("haot_points_expired_total", "Points expired by the expiry job")
LOTS_EXPIRED = Counter("haot_point_lots_expired_total", "Lots processed by the expiry job")
POINTS_MOVED = Counter(
    "haot_points_moved_total",
    "Points moved by ledger entries once committed, by entry type: EARN (stays completed), USE"
    " (bookings confirmed), CANCEL_USE (given back on cancellation), EXPIRE, ADMIN_GRANT,"
    " ADMIN_DEDUCT",
    ["type"],
)
for _type in EntryType:  # every type exported from the start (at 0), so a first one shows
    POINTS_MOVED.labels(_type.value)

HELD, SPENT, RELEASED = "HELD", "SPENT", "RELEASED"
EXPIRING_WINDOW = timedelta(days=30)
BALANCE_TTL = timedelta(minutes=5)


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough points"


class PointService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        redis: Redis,
        expiry: timedelta,
        refund_grace: timedelta,
        earn_rate_percent: float,
    ) -> None:
        self._uow = uow
        self._balances = GenerationCache(redis, namespace="point", ttl=BALANCE_TTL)
        self._expiry = expiry
        self._grace = refund_grace
        self._earn_rate = earn_rate_percent

    # Cache ------------------------------------------------------------------------------------

    def _changed(self, uow: UnitOfWork, user_id: uuid.UUID) -> None:
        """Bump the user's cache generation once the change has committed (awaited, so the next
        read after the response never sees the old balance)."""
        scope = str(user_id)
        uow.after_commit(lambda: self._balances.invalidate(scope), wait=True)

    async def balance(self, user_id: uuid.UUID) -> BalanceRead:
        now = utcnow()

        async def load() -> tuple[BalanceRead, datetime | None]:
            async with self._uow() as uow:
                spendable, held, expiring, changes_at = await PointRepository(uow.session).summary(
                    user_id, now, EXPIRING_WINDOW
                )
            # Time alone changes a balance (a lot expires before the job runs, or enters the
            # 30-day window): the cached answer is good only until the first such moment.
            return BalanceRead(balance=spendable, held=held, expiring_30d=expiring), changes_at

        return await self._balances.get_or_load_bounded(
            "balance", BalanceRead, load, now=now, scope=str(user_id)
        )

    async def spendable(self, *, user_id: uuid.UUID) -> int:
        return (await self.balance(user_id)).balance

    # Lots -------------------------------------------------------------------------------------

    def _entry(
        self,
        uow: UnitOfWork,
        user_id: uuid.UUID,
        type: EntryType,
        amount: int,
        reason: str,
        *,
        reservation_id: uuid.UUID | None = None,
        lot_id: uuid.UUID | None = None,
    ) -> Entry:
        entry = Entry(
            id=new_id(),
            user_id=user_id,
            type=type.value,
            amount=amount,
            reservation_id=reservation_id,
            lot_id=lot_id,
            reason=reason[:300],
            created_at=utcnow(),
        )
        PointRepository(uow.session).add(entry)
        moved = POINTS_MOVED.labels(type.value)

        async def count() -> None:
            moved.inc(abs(amount))

        uow.after_commit(count, wait=True)
        return entry

    def _new_lot(
        self,
        uow: UnitOfWork,
        user_id: uuid.UUID,
        kind: str,
        amount: int,
        *,
        expires_at: datetime,
        reason: str,
        source: str | None,
    ) -> Lot:
        now = utcnow()
        lot = Lot(
            id=new_id(),
            user_id=user_id,
            kind=kind,
            amount=amount,
            remaining=amount,
            expires_at=expires_at,
            source=source,
            reason=reason[:300],
            created_at=now,
        )
        PointRepository(uow.session).add(lot)
        return lot

    async def grant(self, data: GrantCreate) -> EntryRead:
        now = utcnow()
        expires_at = data.expires_at or now + self._expiry
        if expires_at <= now:
            raise InvalidInput("expires_at must be in the future")
        async with self._uow() as uow:
            lot = self._new_lot(
                uow,
                data.user_id,
                EntryType.ADMIN_GRANT.value,
                data.amount,
                expires_at=expires_at,
                reason=data.reason,
                source=None,
            )
            entry = self._entry(
                uow, data.user_id, EntryType.ADMIN_GRANT, data.amount, data.reason, lot_id=lot.id
            )
            self._changed(uow, data.user_id)
            await uow.commit()
        return EntryRead.model_validate(entry)

    async def earn(
        self, uow: UnitOfWork, *, user_id: uuid.UUID, reservation_id: uuid.UUID, paid_amount: int
    ) -> int:
        """Points for a completed stay, once per reservation (inside the consumer's unit)."""
        amount = earned_points(paid_amount, self._earn_rate)
        source = f"earn:{reservation_id}"
        if amount <= 0 or await PointRepository(uow.session).lot_by_source(source) is not None:
            return 0
        lot = self._new_lot(
            uow,
            user_id,
            EntryType.EARN.value,
            amount,
            expires_at=utcnow() + self._expiry,
            reason="stay completed",
            source=source,
        )
        self._entry(
            uow,
            user_id,
            EntryType.EARN,
            amount,
            "stay completed",
            reservation_id=reservation_id,
            lot_id=lot.id,
        )
        self._changed(uow, user_id)
        return amount

    async def _take(
        self, uow: UnitOfWork, user_id: uuid.UUID, amount: int
    ) -> list[tuple[uuid.UUID, int]]:
        now = utcnow()
        lots = await PointRepository(uow.session).live_lots_for_update(user_id, now)
        try:
            taken = allocate(
                [LotView(lot.id, lot.remaining, lot.expires_at, lot.created_at) for lot in lots],
                amount,
                now=now,
            )
        except ValueError as exc:
            raise InsufficientPoints(f"{amount} points asked, fewer available") from exc
        by_id = {lot.id: lot for lot in lots}
        for lot_id, take in taken:
            by_id[lot_id].remaining -= take
        return taken

    async def deduct(self, data: DeductionCreate) -> EntryRead:
        async with self._uow() as uow:
            await self._take(uow, data.user_id, data.amount)
            entry = self._entry(
                uow, data.user_id, EntryType.ADMIN_DEDUCT, -data.amount, data.reason
            )
            self._changed(uow, data.user_id)
            await uow.commit()
        return EntryRead.model_validate(entry)

    # Reservation saga -------------------------------------------------------------------------

    async def hold(self, *, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        """Set ``amount`` aside for the reservation (idempotent per reservation, also when the
        same hold is sent again while the first is still running: a retried call)."""
        try:
            await self._hold_once(user_id, reservation_id, amount)
        except IntegrityError:
            # The reservation's hold is unique: another try of it committed first (and this
            # one's transaction, lots included, rolled back). Answer as that try did.
            async with self._uow() as uow:
                existing = await PointRepository(uow.session).hold_for(reservation_id)
            if existing is None:
                raise
            _already_held(existing)

    async def _hold_once(self, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        async with self._uow() as uow:
            repo = PointRepository(uow.session)
            existing = await repo.hold_for(reservation_id)
            if existing is not None:
                _already_held(existing)
                return
            taken = await self._take(uow, user_id, amount)
            now = utcnow()
            hold = Hold(
                id=new_id(),
                user_id=user_id,
                reservation_id=reservation_id,
                amount=amount,
                refunded=0,
                status=HELD,
                created_at=now,
                updated_at=now,
            )
            repo.add(hold)
            for lot_id, take in taken:
                repo.add(Allocation(hold_id=hold.id, lot_id=lot_id, amount=take, returned=0))
            self._changed(uow, user_id)
            await uow.commit()

    async def spend(self, uow: UnitOfWork, reservation_id: uuid.UUID) -> bool:
        repo = PointRepository(uow.session)
        hold = await repo.hold_for(reservation_id)
        if hold is None or hold.status != HELD:
            return False
        hold.status = SPENT
        hold.updated_at = utcnow()
        self._entry(
            uow,
            hold.user_id,
            EntryType.USE,
            -hold.amount,
            "reservation",
            reservation_id=reservation_id,
        )
        self._changed(uow, hold.user_id)
        return True

    async def release(self, uow: UnitOfWork, reservation_id: uuid.UUID) -> bool:
        """Give held points back to their lots (the reservation will not happen)."""
        repo = PointRepository(uow.session)
        hold = await repo.hold_for(reservation_id)
        if hold is None:
            # Release before the hold: leave a tombstone so a late hold is refused.
            now = utcnow()
            repo.add(
                Hold(
                    id=new_id(),
                    user_id=uuid.UUID(int=0),
                    reservation_id=reservation_id,
                    amount=0,
                    refunded=0,
                    status=RELEASED,
                    created_at=now,
                    updated_at=now,
                )
            )
            return False
        if hold.status != HELD:
            return False
        await self._return(uow, hold, hold.amount)
        hold.status = RELEASED
        hold.updated_at = utcnow()
        self._changed(uow, hold.user_id)
        return True

    async def refund(self, uow: UnitOfWork, reservation_id: uuid.UUID, amount: int) -> int:
        """A cancelled stay gives back ``amount`` of the points it spent (once per reservation)."""
        repo = PointRepository(uow.session)
        hold = await repo.hold_for(reservation_id)
        if hold is None or hold.status != SPENT or hold.refunded:
            return 0
        amount = min(amount, hold.amount)
        if amount <= 0:
            return 0
        await self._return(uow, hold, amount)
        hold.refunded = amount
        hold.updated_at = utcnow()
        self._entry(
            uow,
            hold.user_id,
            EntryType.CANCEL_USE,
            amount,
            "reservation cancelled",
            reservation_id=reservation_id,
        )
        self._changed(uow, hold.user_id)
        return amount

    async def _return(self, uow: UnitOfWork, hold: Hold, amount: int) -> None:
        repo = PointRepository(uow.session)
        allocations = list(await repo.allocations(hold.id))
        lots = await repo.lots_by_id([a.lot_id for a in allocations])
        placed = place_refund(
            [
                AllocationView(a.lot_id, a.amount, a.returned, lots[a.lot_id].expires_at)
                for a in allocations
            ],
            amount,
        )
        now = utcnow()
        by_lot = {a.lot_id: a for a in allocations}
        for lot_id, give in placed:
            by_lot[lot_id].returned += give
            lot = lots[lot_id]
            if lot.expires_at > now:
                lot.remaining += give
            else:
                # The lot expired meanwhile: the points come back in a fresh lot with a grace
                # period, leaving the expired lot's books closed.
                self._new_lot(
                    uow,
                    hold.user_id,
                    "RESTORED",
                    give,
                    expires_at=restored_expiry(lot.expires_at, now=now, grace=self._grace),
                    reason=f"restored from lot {lot.id}",
                    source=None,
                )

    # Reads ------------------------------------------------------------------------------------

    async def history(
        self,
        *,
        user_id: uuid.UUID | None,
        type: EntryType | None,
        since: datetime | None,
        until: datetime | None,
        paging: PageParams,
    ) -> Page[EntryRead]:
        async with self._uow() as uow:
            rows, total = await PointRepository(uow.session).entries(
                user_id=user_id,
                type=type.value if type else None,
                since=since,
                until=until,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[EntryRead].of(rows, total, paging, EntryRead.model_validate)

    # Expiry -----------------------------------------------------------------------------------

    async def expire(
        self, *, now: datetime, dry_run: bool = False, chunk: int = 500
    ) -> dict[str, int]:
        """Expire lots past their date, chunk by chunk; lots are claimed with SKIP LOCKED, so
        several workers share the work and each lot is expired exactly once."""
        if dry_run:
            async with self._uow() as uow:
                due_lots, due_points = await PointRepository(uow.session).expired_totals(now)
            return {"lots": due_lots, "points": due_points, "dry_run": 1}
        lots_done = points_done = 0
        while True:
            async with self._uow() as uow:
                repo = PointRepository(uow.session)
                lots = await repo.claim_expired_lots(now, chunk)
                users: set[uuid.UUID] = set()
                for lot in lots:
                    self._entry(
                        uow, lot.user_id, EntryType.EXPIRE, -lot.remaining, "expired", lot_id=lot.id
                    )
                    points_done += lot.remaining
                    lot.remaining = 0
                    users.add(lot.user_id)
                for user_id in users:
                    self._changed(uow, user_id)
                await uow.commit()
            lots_done += len(lots)
            if len(lots) < chunk:
                break
        LOTS_EXPIRED.inc(lots_done)
        POINTS_EXPIRED.inc(points_done)
        return {"lots": lots_done, "points": points_done, "dry_run": 0}


def _already_held(existing: Hold) -> None:
    """What a repeated hold answers: nothing more to do, unless it was released meanwhile."""
    if existing.status == RELEASED:
        raise InsufficientPoints("this reservation's points were already released")
