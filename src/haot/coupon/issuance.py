"""Event coupon issuance: admit in Redis (``Drops``), pump admitted claims from the Redis streams
into the event transport, persist them in batches (the database caps again), tell the user, and
reconcile Redis from the database when they disagree or Redis lost its keys."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import orjson
import structlog
from prometheus_client import Counter, Gauge

from haot.coupon.domain import UserCouponStatus, claim_id, parse_claim_id
from haot.coupon.drops import Admission, Drops, EventState
from haot.coupon.models import Claim, UserCoupon
from haot.coupon.repository import CouponRepository
from haot.coupon.schemas import ClaimAccepted, ClaimRead
from haot.coupon.service import EventNotFound, redis_state
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.redis import Redis
from haot.platform.transport import Transport
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

CLAIM_ACCEPTED = "coupon.claim_accepted"
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


def _results_channel(user_id: uuid.UUID) -> str:
    return f"coupon:claim-results:{{{user_id}}}"


class Issuance:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        drops: Drops,
        redis: Redis,
        worker_name: str = "worker",
    ) -> None:
        self._uow = uow
        self._drops = drops
        self._redis = redis
        self._worker = worker_name
        self._rebuilding: set[uuid.UUID] = set()
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

    async def results(self, user_id: uuid.UUID) -> AsyncIterator[bytes]:
        """Server-sent events: each of this user's claim outcomes as it is persisted."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(_results_channel(user_id))
        try:
            yield b": subscribed\n\n"
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15.0)
                if message is None:
                    yield b": keep-alive\n\n"
                    continue
                data = message["data"]
                payload = data if isinstance(data, bytes) else str(data).encode()
                yield b"event: claim\ndata: " + payload + b"\n\n"
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    # Pump: Redis streams → event transport ------------------------------------------------------

    async def pump_once(self, transport: Transport, *, count: int = 500) -> int:
        moved = 0
        backlog = 0
        for event_id in await self._drops.active_events():
            await self._drops.ensure_group(event_id)
            entries = await self._drops.read_claims(
                event_id, self._worker, count=count, block_ms=None
            )
            if entries:
                await transport.publish(
                    [
                        Event(
                            id=uuid.uuid5(_CLAIM_NAMESPACE, fields["claim"]),
                            type=CLAIM_ACCEPTED,
                            aggregate_id=str(event_id),
                            payload={
                                "event_id": str(event_id),
                                "user_id": fields["user"],
                                "claim_id": fields["claim"],
                                "accepted_at_ms": int(fields.get("at", "0")),
                            },
                        )
                        for _, fields in entries
                    ]
                )
                await self._drops.ack(event_id, [entry_id for entry_id, _ in entries])
                moved += len(entries)
            backlog += await self._drops.backlog(event_id)
        STREAM_BACKLOG.set(backlog)
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

    async def persist(self, uow: UnitOfWork, event: Event) -> None:
        """Issue the coupon for one admitted claim, unless the database says no (already holding
        one for this event, or the event already at its cap)."""
        payload = event.payload
        event_id = uuid.UUID(payload["event_id"])
        user_id = uuid.UUID(payload["user_id"])
        claim = payload["claim_id"]
        repo = CouponRepository(uow.session)
        now = utcnow()
        accepted_at = datetime.fromtimestamp(payload.get("accepted_at_ms", 0) / 1000, tz=UTC)
        if await repo.get_claim(claim) is not None:
            return
        coupon_event = await repo.get_event(event_id)
        outcome: dict[str, str | None]
        if coupon_event is None:
            outcome = {"status": "FAILED", "reason": "event not found", "user_coupon_id": None}
        elif await repo.user_coupon_for_event(event_id, user_id) is not None:
            outcome = {"status": "FAILED", "reason": "already claimed", "user_coupon_id": None}
        elif not await repo.take_stock(event_id):
            OVER_ISSUE_REFUSED.inc()
            outcome = {"status": "FAILED", "reason": "sold out", "user_coupon_id": None}
        else:
            coupon = await repo.get_coupon(coupon_event.coupon_id)
            user_coupon = UserCoupon(
                id=uuid.uuid5(_CLAIM_NAMESPACE, f"user-coupon:{claim}"),
                user_id=user_id,
                coupon_id=coupon_event.coupon_id,
                event_id=event_id,
                status=UserCouponStatus.ISSUED.value,
                expires_at=coupon.valid_to if coupon else coupon_event.ends_at,
                issued_at=now,
                updated_at=now,
            )
            repo.add(user_coupon)
            ISSUED.inc()
            outcome = {"status": "ISSUED", "reason": None, "user_coupon_id": str(user_coupon.id)}
            await uow.flush()
            await uow.session.refresh(coupon_event)
            if coupon_event.quantity is not None and coupon_event.issued >= coupon_event.quantity:
                coupon_event.closed_reason = "EXHAUSTED"
                coupon_event.updated_at = now
        repo.add(
            Claim(
                id=claim,
                event_id=event_id,
                user_id=user_id,
                status=str(outcome["status"]),
                user_coupon_id=uuid.UUID(outcome["user_coupon_id"])
                if outcome["user_coupon_id"]
                else None,
                reason=outcome["reason"],
                accepted_at=accepted_at,
                settled_at=now,
            )
        )
        message = orjson.dumps({"claim_id": claim, "event_id": str(event_id), **outcome})
        channel = _results_channel(user_id)
        uow.after_commit(lambda: self._redis.publish(channel, message))

    def consumer(self) -> Consumer:
        handlers: dict[str, EventHandler] = {CLAIM_ACCEPTED: self.persist}
        return Consumer("coupon.claims", self._uow, handlers)

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
