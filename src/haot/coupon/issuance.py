"""Event coupon issuance: admit in Redis (``Drops``), pump admitted claims from the Redis streams
into the event transport, persist them in batches (the database caps again), tell the user, and
reconcile Redis from the database when they disagree or Redis lost its keys."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import structlog
from prometheus_client import Counter, Gauge

from haot.coupon import drops as drops_module
from haot.coupon.domain import UserCouponStatus, claim_id, parse_claim_id
from haot.coupon.drops import Admission, Drops, EventState
from haot.coupon.events import ClaimAdmitted
from haot.coupon.models import Claim, UserCoupon
from haot.coupon.repository import CouponRepository
from haot.coupon.schemas import ClaimAccepted, ClaimRead
from haot.coupon.service import EventNotFound, redis_state
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from haot.platform.events import Event
from haot.platform.inbox import Consumer
from haot.platform.live import LiveStreams, Topic
from haot.platform.redis import Redis
from haot.platform.transport import Transport
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

_CLAIM_NAMESPACE = uuid.UUID("6f1c2b1e-3c0a-4a57-9b8e-1c4b3c3a9d10")

CLAIMS = Counter("haot_coupon_claims_total", "Event coupon claims by outcome", ["outcome"])
ISSUED = Counter("haot_coupons_issued_total", "Event coupons persisted as issued")
OVER_ISSUE_REFUSED = Counter(
    "haot_coupon_over_issue_refused_total",
    "Admitted claims the database refused because the event was already at its cap",
)
STREAM_BACKLOG = Gauge(
    "haot_coupon_claim_backlog", "Admitted claims not yet persisted", multiprocess_mode="max"
)
STOCK_REMAINING = Gauge(
    "haot_coupon_stock_remaining",
    "Coupons still to be admitted across the active events, as Redis counts them (events"
    " without a quantity not counted): with the coupons issued, how far a drop is from its cap",
    multiprocess_mode="max",
)


class CouponSoldOut(Conflict):
    code = "coupon_sold_out"
    title = "All coupons of this event have been claimed"


class AlreadyClaimed(Conflict):
    code = "coupon_already_claimed"
    title = "You already claimed this event's coupon"


class EventNotOpen(Conflict):
    code = "event_not_open"
    title = "The event is not open"


class ClaimNotFound(NotFound):
    code = "claim_not_found"
    title = "Claim not found"


class StockMoved(RuntimeError):
    """The conditional stock update refused what the locked row said would fit."""


def _claim_event(event_id: uuid.UUID, fields: dict[str, str]) -> Event:
    """The admitted claim as it leaves its Redis stream: its id derives from the claim, so a claim
    pumped twice is one event."""
    return Event.of(
        ClaimAdmitted(
            event_id=event_id,
            user_id=uuid.UUID(fields["user"]),
            claim_id=fields["claim"],
            accepted_at_ms=int(fields.get("at", "0")),
        ),
        id=uuid.uuid5(_CLAIM_NAMESPACE, fields["claim"]),
    )


def claim_topic(user_id: uuid.UUID) -> Topic:
    """Where a user's claim outcomes go live (``GET /coupon-claims/stream``)."""
    return Topic("claim", str(user_id))


def _outcome_message(claim: Claim) -> bytes:
    return orjson.dumps(
        {
            "claim_id": claim.id,
            "event_id": str(claim.event_id),
            "status": claim.status,
            "reason": claim.reason,
            "user_coupon_id": str(claim.user_coupon_id) if claim.user_coupon_id else None,
        }
    )


@dataclass(frozen=True, slots=True)
class _Admitted:
    """An admitted claim, as the consumer settles it."""

    claim_id: str
    event_id: uuid.UUID
    user_id: uuid.UUID
    accepted_at: datetime

    @classmethod
    def of(cls, event: ClaimAdmitted) -> _Admitted:
        return cls(
            claim_id=event.claim_id,
            event_id=event.event_id,
            user_id=event.user_id,
            accepted_at=datetime.fromtimestamp(event.accepted_at_ms / 1000, tz=UTC),
        )

    def issued(self, user_coupon_id: uuid.UUID, now: datetime) -> Claim:
        return self._row("ISSUED", None, user_coupon_id, now)

    def failed(self, reason: str, now: datetime) -> Claim:
        return self._row("FAILED", reason, None, now)

    def _row(
        self, status: str, reason: str | None, user_coupon_id: uuid.UUID | None, now: datetime
    ) -> Claim:
        return Claim(
            id=self.claim_id,
            event_id=self.event_id,
            user_id=self.user_id,
            status=status,
            user_coupon_id=user_coupon_id,
            reason=reason,
            accepted_at=self.accepted_at,
            settled_at=now,
        )


class Issuance:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        drops: Drops,
        redis: Redis,
        live: LiveStreams,
        worker_name: str = "worker",
    ) -> None:
        self._uow = uow
        self._drops = drops
        self._redis = redis
        self._live = live
        self._worker = worker_name
        self._rebuilding: set[uuid.UUID] = set()
        self._groups: set[uuid.UUID] = set()  # consumer groups known to exist
        self._recover_at: dict[uuid.UUID, float] = {}  # next pass that looks for pending claims
        self._backlog_gauge_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    # The hot path ------------------------------------------------------------------------------

    async def claim(self, event_id: uuid.UUID, user_id: uuid.UUID) -> ClaimAccepted:
        """One Redis round trip decides; the answer is 202 ACCEPTED or a clear refusal."""
        claim = claim_id(event_id, user_id)
        result = await self._drops.admit(event_id, user_id, claim)
        CLAIMS.labels(result.admission.value).inc()
        match result.admission:
            case Admission.ACCEPTED:
                return ClaimAccepted(claim_id=claim)
            case Admission.DUPLICATE:
                raise AlreadyClaimed()
            case Admission.SOLD_OUT:
                raise CouponSoldOut()
            case Admission.NOT_OPEN:
                raise EventNotOpen()
            case Admission.RATE_LIMITED:
                raise RateLimited(retry_after=max(1, -(-result.value // 1000)))
            case Admission.PAUSED:
                raise ServiceUnavailable("Coupon issuing is being repaired; retry shortly")
            case Admission.MISSING:
                # Redis lost the event, or it never was one (which no retry would change).
                async with self._uow() as uow:
                    if await CouponRepository(uow.session).get_event(event_id) is None:
                        raise EventNotFound()
                await self._rebuild_soon(event_id)
                raise ServiceUnavailable("Coupon issuing is being repaired; retry shortly")

    async def _rebuild_soon(self, event_id: uuid.UUID) -> None:
        if event_id in self._rebuilding:
            return
        self._rebuilding.add(event_id)

        async def run() -> None:
            try:
                await self.reconcile_event(event_id, force=True)
            except EventNotFound:
                # Not an event (claim() answers 404 for those): nothing to rebuild.
                log.info("claim_for_unknown_event", event_id=str(event_id))
            except Exception:
                log.exception("coupon_rebuild_failed", event_id=str(event_id))
            finally:
                self._rebuilding.discard(event_id)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # Claim status ------------------------------------------------------------------------------

    async def status(self, user_id: uuid.UUID, raw_claim_id: str) -> ClaimRead:
        parsed = parse_claim_id(raw_claim_id)
        if parsed is None or parsed[1] != user_id:
            raise ClaimNotFound()
        event_id, _ = parsed
        async with self._uow() as uow:
            claim = await CouponRepository(uow.session).get_claim(raw_claim_id)
        if claim is not None:
            return ClaimRead(
                claim_id=claim.id,
                event_id=claim.event_id,
                status=claim.status,
                user_coupon_id=claim.user_coupon_id,
                reason=claim.reason,
            )
        if await self._drops.has_claimed(event_id, user_id):
            return ClaimRead(claim_id=raw_claim_id, event_id=event_id, status="ACCEPTED")
        raise ClaimNotFound()

    async def results(
        self, user_id: uuid.UUID, *, last_event_id: str | None = None
    ) -> AsyncIterator[bytes]:
        """Server-sent events: each of this user's claim outcomes as it is persisted (``event:
        claim``), resumable with ``Last-Event-ID``. Raises ``TooManyStreams`` before the first
        frame if the user has too many open."""
        return await self._live.open(user_id, claim_topic(user_id), last_event_id=last_event_id)

    # Pump: Redis streams → event transport ------------------------------------------------------

    async def pump_once(self, transport: Transport, *, count: int = 500) -> int:
        """Move admitted claims of every active event from its stream into the transport, then
        acknowledge them. Pending and orphaned claims are looked for on the first pass, after a
        failure, and every half ``RECLAIM_IDLE_MS``; otherwise a pass reads only new claims."""
        moved = 0
        now = asyncio.get_running_loop().time()
        events = await self._drops.active_events()
        for event_id in events:
            recover = now >= self._recover_at.get(event_id, 0.0)
            try:
                if event_id not in self._groups:
                    await self._drops.ensure_group(event_id)
                    self._groups.add(event_id)
                entries = await self._drops.read_claims(
                    event_id, self._worker, count=count, recover=recover
                )
                if recover:
                    self._recover_at[event_id] = now + drops_module.RECLAIM_IDLE_MS / 2000
                if entries:
                    await transport.publish([_claim_event(event_id, f) for _, f in entries])
                    await self._drops.ack(event_id, [entry_id for entry_id, _ in entries])
                    moved += len(entries)
            except BaseException:  # cancelled or killed mid-batch too
                # Next pass: this worker's pending claims first; the group again if Redis lost it.
                self._recover_at.pop(event_id, None)
                self._groups.discard(event_id)
                raise
        if now >= self._backlog_gauge_at:
            self._backlog_gauge_at = now + 1.0
            STREAM_BACKLOG.set(sum([await self._drops.backlog(e) for e in events]))
            stock = await self._drops.remaining(events)
            STOCK_REMAINING.set(
                sum(left for left in stock.values() if left is not None and left > 0)
            )
        return moved

    async def pump(self, transport: Transport, stop: asyncio.Event) -> None:
        idle = 0.02
        while not stop.is_set():
            try:
                moved = await self.pump_once(transport)
            except Exception:
                log.exception("coupon_pump_failed")
                moved = 0
                idle = min(idle * 2, 2.0)
            if moved:
                idle = 0.02
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle)
            idle = min(idle * 2, 0.25)

    # Persist: event transport → database --------------------------------------------------------

    async def persist_batch(self, uow: UnitOfWork, events: Sequence[ClaimAdmitted]) -> None:
        """Issue the coupons of a batch of admitted claims, first come first served, unless the
        database says no (the user already holds one of the event, or the event is at its cap).

        A fixed number of statements per coupon event, whatever the batch's size: lock the event
        row, find the claims already persisted (skipped, so a redelivery changes nothing) and the
        users already holding a coupon, take the stock for as many as fit in one conditional
        UPDATE, insert the rows together. Each user hears their outcome after commit."""
        by_event: dict[uuid.UUID, list[_Admitted]] = {}
        for event in events:
            admitted = _Admitted.of(event)
            by_event.setdefault(admitted.event_id, []).append(admitted)
        repo = CouponRepository(uow.session)
        now = utcnow()
        settled: list[Claim] = []
        # Events are locked in one order by every consumer, so two batches cannot deadlock.
        for event_id in sorted(by_event):
            settled += await self._settle(repo, event_id, by_event[event_id], now)
        if settled:
            messages = [(claim_topic(c.user_id), _outcome_message(c)) for c in settled]
            # Awaited (one round trip per batch): once the consumer's commit returns, metrics and
            # outcomes are out.
            uow.after_commit(lambda: self._announce(settled, messages), wait=True)

    async def _settle(
        self,
        repo: CouponRepository,
        event_id: uuid.UUID,
        admitted: Sequence[_Admitted],
        now: datetime,
    ) -> list[Claim]:
        """The claims of one coupon event, in their order: their rows, inserted."""
        # Under the row lock (BEGIN IMMEDIATE on SQLite) nobody else settles this event's claims,
        # so what the reads below find stays true until commit.
        coupon_event = await repo.get_event(event_id, for_update=True)
        persisted = await repo.persisted_claim_ids({a.claim_id for a in admitted})
        fresh: list[_Admitted] = []
        for claim in admitted:
            if claim.claim_id not in persisted:
                persisted.add(claim.claim_id)  # the same claim twice in one batch settles once
                fresh.append(claim)
        if not fresh:
            return []
        if coupon_event is None:
            rows = [claim.failed("event not found", now) for claim in fresh]
            await repo.insert_all(rows)
            return rows
        holders = await repo.holders_among(event_id, {claim.user_id for claim in fresh})
        eligible: list[_Admitted] = []
        refused: dict[str, str] = {}
        for claim in fresh:
            if claim.user_id in holders:
                refused[claim.claim_id] = "already claimed"
            else:
                holders.add(claim.user_id)  # a second claim of the same user in this batch
                eligible.append(claim)
        room = len(eligible)
        if coupon_event.quantity is not None:
            room = max(0, min(room, coupon_event.quantity - coupon_event.issued))
        winners, losers = eligible[:room], eligible[room:]
        for claim in losers:
            refused[claim.claim_id] = "sold out"
        issued_coupons: dict[str, UserCoupon] = {}
        if winners:
            # The conditional UPDATE stays the cap: were the locked read ever stale, this refuses
            # rather than over-issues, and the batch is retried.
            issued = await repo.take_stock(event_id, count=len(winners))
            if issued is None:
                raise StockMoved(f"coupon event {event_id}: stock changed under its row lock")
            coupon = await repo.get_coupon(coupon_event.coupon_id)
            expires_at = coupon.valid_to if coupon else coupon_event.ends_at
            for claim in winners:
                issued_coupons[claim.claim_id] = UserCoupon(
                    id=uuid.uuid5(_CLAIM_NAMESPACE, f"user-coupon:{claim.claim_id}"),
                    user_id=claim.user_id,
                    coupon_id=coupon_event.coupon_id,
                    event_id=event_id,
                    status=UserCouponStatus.ISSUED.value,
                    expires_at=expires_at,
                    issued_at=now,
                    updated_at=now,
                )
            await repo.insert_all(list(issued_coupons.values()))
            if coupon_event.quantity is not None and issued >= coupon_event.quantity:
                coupon_event.closed_reason = "EXHAUSTED"
                coupon_event.updated_at = now
        rows = [
            claim.issued(issued_coupons[claim.claim_id].id, now)
            if claim.claim_id in issued_coupons
            else claim.failed(refused[claim.claim_id], now)
            for claim in fresh
        ]
        await repo.insert_all(rows)
        return rows

    async def _announce(
        self, settled: Sequence[Claim], messages: list[tuple[Topic, bytes]]
    ) -> None:
        """Once committed (a batch that rolls back is retried claim by claim: counting before
        would count twice): the metrics, then every outcome of the batch in one round trip."""
        ISSUED.inc(sum(1 for c in settled if c.status == "ISSUED"))
        if refused := sum(1 for c in settled if c.reason == "sold out"):
            OVER_ISSUE_REFUSED.inc(refused)
        await self._live.publisher.publish(messages)

    def consumer(self) -> Consumer:
        return Consumer("coupon.claims", self._uow).on_batch(ClaimAdmitted, self.persist_batch)

    # Reconcile: database → Redis ---------------------------------------------------------------

    async def reconcile_event(self, event_id: uuid.UUID, *, force: bool = False) -> str:
        """Make Redis agree with the database for one event. Pauses admission, waits for admitted
        claims to be persisted (they would be counted twice otherwise), then rebuilds stock and
        the set of users from the rows. Returns what it did."""
        lock = f"cev:{{{event_id}}}:rebuild"
        if not await self._redis.set(lock, self._worker, nx=True, px=30_000):
            return "busy"
        try:
            async with self._uow() as uow:
                event = await CouponRepository(uow.session).get_event(event_id)
            if event is None:
                raise EventNotFound()
            loaded = await self._drops.is_loaded(event_id)
            # Paused while nobody holds the lock: a rebuild gave up half-way; finish it.
            paused = loaded and await self._drops.state(event_id) == "paused"
            if loaded and not force and not paused and await self._consistent(event_id):
                return "ok"
            if loaded:
                await self._drops.set_state(event_id, "paused")
            else:
                await self._drops.load(
                    EventState(
                        event_id=event.id,
                        state="paused",
                        starts_at=event.starts_at,
                        ends_at=event.ends_at,
                        remaining=0,
                        users=[],
                    )
                )
            await self._drain(event_id)
            async with self._uow() as uow:
                repo = CouponRepository(uow.session)
                event = await repo.get_event(event_id)
                assert event is not None
                users = await repo.event_user_ids(event_id)
            await self._drops.load(redis_state(event, users))
            log.warning("coupon_event_rebuilt", event_id=str(event_id), issued=event.issued)
            return "rebuilt"
        finally:
            await self._redis.delete(lock)

    async def _drain(self, event_id: uuid.UUID, *, within: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while await self._drops.backlog(event_id) > 0:
            if asyncio.get_running_loop().time() > deadline:
                raise ServiceUnavailable("admitted claims are still being persisted")
            await asyncio.sleep(0.05)

    async def _consistent(self, event_id: uuid.UUID) -> bool:
        """Redis agrees with itself (every admitted claim took one unit of stock and added one
        user) and the database is never ahead of it (nothing is persisted that was not
        admitted). Claims between the two (in the stream, or already in Kafka on their way to
        the database) are neither counted nor needed: with Kafka they are invisible from here,
        and counting them as missing would re-open their stock. The database is read before
        Redis, so a claim persisted in between only makes Redis look further ahead."""
        before = await self._issued(event_id)
        if before is None:
            return True
        quantity, issued = before
        snapshot = await self._drops.stock_and_users(event_id)
        if snapshot is None:
            return False
        remaining, users = snapshot
        admitted = quantity - remaining
        return users == admitted and issued <= admitted

    async def _issued(self, event_id: uuid.UUID) -> tuple[int, int] | None:
        """(quantity, issued) from the database; None for an unlimited or unknown event."""
        async with self._uow() as uow:
            event = await CouponRepository(uow.session).get_event(event_id)
        if event is None or event.quantity is None:
            return None
        return event.quantity, event.issued

    async def reconcile(self, now: datetime) -> dict[str, int]:
        """The scheduled sweep: close events past their end, load or repair the others."""
        closed = 0
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            for event in await repo.events_past_end(now):
                event.closed_reason = "TIME"
                event.updated_at = now
                closed += 1
            await uow.commit()
            serving: Sequence[uuid.UUID] = [e.id for e in await repo.events_to_serve(now)]
        rebuilt = 0
        for event_id in serving:
            if await self.reconcile_event(event_id) == "rebuilt":
                rebuilt += 1
        for event_id in await self._drops.active_events():
            if event_id in serving or await self._drops.backlog(event_id):
                continue
            # Look again: an event created after the snapshot above is active but not in it.
            async with self._uow() as uow:
                current = await CouponRepository(uow.session).get_event(event_id)
            if current is None or current.closed_reason is not None or current.ends_at <= now:
                if current is None or current.closed_reason != "EXHAUSTED":
                    await self._drops.set_state(event_id, "closed")
                await self._drops.forget(event_id)
        return {"closed": closed, "rebuilt": rebuilt, "serving": len(serving)}
