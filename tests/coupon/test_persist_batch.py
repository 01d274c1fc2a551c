"""Persisting admitted claims a batch at a time (``Issuance.persist_batch``), on both backends:
first come first served up to the cap, duplicates refused, redelivery harmless, a statement count
that does not grow with the batch, and no over-issue when batches race for the same event.

Claims are handed straight to ``persist_batch`` (as the consumer does, one unit of work per
batch); admission in Redis is not involved, so a test can send what Redis would never admit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from haot.coupon.domain import claim_id
from haot.coupon.events import ClaimAdmitted
from haot.coupon.issuance import ISSUED, OVER_ISSUE_REFUSED
from haot.coupon.models import Claim, UserCoupon
from haot.platform.container import Platform
from haot.platform.events import Event
from haot.platform.metrics import EVENTS_DUPLICATE
from haot.platform.settings import Settings
from tests.coupon.conftest import db_view, duplicate_holders, issuance_of, open_drop, running

pytestmark = [pytest.mark.redis]


def admitted(event_id: uuid.UUID, user: uuid.UUID, *, claim: str | None = None) -> Event:
    """The event the pump sends for one admitted claim (``claim``: another id than the usual)."""
    raw = claim or claim_id(event_id, user)
    return Event.of(
        ClaimAdmitted(
            event_id=event_id, user_id=user, claim_id=raw, accepted_at_ms=int(time.time() * 1000)
        )
    )


def batch_of(event_id: uuid.UUID, size: int) -> list[Event]:
    return [admitted(event_id, uuid.uuid4()) for _ in range(size)]


async def persist(platform: Platform, events: Sequence[Event]) -> None:
    """One batch in one transaction, as the consumer applies it."""
    async with platform.uow_factory("coupon")() as uow:
        await issuance_of(platform).persist_batch(uow, [ClaimAdmitted.decode(e) for e in events])
        await uow.commit()


async def claim_rows(platform: Platform, event_id: uuid.UUID) -> dict[str, tuple[Any, ...]]:
    async with platform.databases.sessions_for("coupon")() as session:
        rows = await session.scalars(select(Claim).where(Claim.event_id == event_id))
        return {
            row.id: (row.user_id, row.status, row.reason, row.user_coupon_id, row.settled_at)
            for row in rows
        }


def claim_of(event: Event) -> str:
    return str(event.payload["claim_id"])


def counter(metric: Any) -> float:
    return float(metric._value.get())


@contextmanager
def statements(platform: Platform) -> Iterator[list[str]]:
    """The SQL statements the consumer's transaction sent while the block ran (those of the
    connection that read the inbox: anything else running on the engine is left out)."""
    seen: list[tuple[object, str]] = []
    ours: list[str] = []
    engine = platform.databases.engine_for("coupon").sync_engine

    def record(conn: object, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((conn, statement))

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield ours
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    consumer = next(conn for conn, statement in seen if "FROM inbox" in statement)
    ours += [statement for conn, statement in seen if conn is consumer]


async def test_a_batch_larger_than_the_stock_issues_what_is_left_in_order(
    settings: Settings,
) -> None:
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=10)
        await persist(platform, batch_of(event_id, 3))
        batch = batch_of(event_id, 12)
        issued, refused = counter(ISSUED), counter(OVER_ISSUE_REFUSED)
        pubsub = platform.redis.pubsub()
        await pubsub.psubscribe("live:claim:*")
        try:
            await persist(platform, batch)

            rows = await claim_rows(platform, event_id)
            outcomes = [rows[claim_of(e)][1:3] for e in batch]
            assert outcomes == [("ISSUED", None)] * 7 + [("FAILED", "sold out")] * 5
            view = await db_view(platform, event_id)
            assert view.issued == view.rows == 10
            assert view.closed_reason == "EXHAUSTED"

            # Each user hears their own outcome once the batch committed.
            wanted = {claim_of(e) for e in batch}
            heard: dict[str, dict[str, Any]] = {}
            deadline = time.monotonic() + 5
            while len(heard) < len(batch) and time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is None:
                    continue
                log_id, _, data = message["data"].partition(" ")
                assert log_id  # the id a resuming stream asks from
                body = orjson.loads(data)
                if body["claim_id"] in wanted:
                    assert message["channel"].endswith(f"{{{rows[body['claim_id']][0]}}}")
                    heard[body["claim_id"]] = body
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        assert [heard[claim_of(e)]["status"] for e in batch] == ["ISSUED"] * 7 + ["FAILED"] * 5
        # Counted after commit, just before the outcomes went out.
        assert counter(ISSUED) - issued == 7
        assert counter(OVER_ISSUE_REFUSED) - refused == 5
        first = heard[claim_of(batch[0])]
        assert first == {
            "claim_id": claim_of(batch[0]),
            "event_id": str(event_id),
            "status": "ISSUED",
            "reason": None,
            "user_coupon_id": str(rows[claim_of(batch[0])][3]),
        }


async def test_duplicates_in_the_batch_and_against_existing_rows_are_refused(
    settings: Settings,
) -> None:
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=10)
        settled, holder, twice, newcomer = (uuid.uuid4() for _ in range(4))
        await persist(platform, [admitted(event_id, settled)])
        before = await claim_rows(platform, event_id)
        # A coupon of this event the user holds without a claim row of the usual id.
        await persist(platform, [admitted(event_id, holder, claim=f"clm_legacy_{holder.hex}")])

        batch = [
            admitted(event_id, settled),  # already persisted: skipped, untouched
            admitted(event_id, holder),  # already holds one: refused
            admitted(event_id, twice),
            admitted(event_id, twice),  # the same claim twice: settled once
            admitted(event_id, twice, claim=f"clm_other_{twice.hex}"),  # same user, other id
            admitted(event_id, newcomer),
        ]
        await persist(platform, batch)

        rows = await claim_rows(platform, event_id)
        assert rows[claim_id(event_id, settled)] == before[claim_id(event_id, settled)]
        assert rows[claim_id(event_id, holder)][1:3] == ("FAILED", "already claimed")
        assert rows[claim_id(event_id, twice)][1:3] == ("ISSUED", None)
        assert rows[f"clm_other_{twice.hex}"][1:3] == ("FAILED", "already claimed")
        assert rows[claim_id(event_id, newcomer)][1:3] == ("ISSUED", None)
        assert len(rows) == 6
        view = await db_view(platform, event_id)
        assert view.issued == view.rows == 4  # settled, holder, twice, newcomer
        assert await duplicate_holders(platform, event_id) == []


async def test_a_redelivered_batch_changes_nothing(settings: Settings) -> None:
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=5)
        batch = batch_of(event_id, 8)
        await persist(platform, batch)
        rows, view = await claim_rows(platform, event_id), await db_view(platform, event_id)

        await persist(platform, batch)  # straight to persist_batch: no inbox in the way
        consumer = issuance_of(platform).consumer()
        duplicates = counter(EVENTS_DUPLICATE.labels("coupon.claims"))
        await consumer.handle_batch(batch)  # through the inbox, twice
        await consumer.handle_batch(batch)

        assert await claim_rows(platform, event_id) == rows
        assert await db_view(platform, event_id) == view
        assert view.issued == 5
        assert counter(EVENTS_DUPLICATE.labels("coupon.claims")) - duplicates == len(batch)


@pytest.mark.parametrize("quantity", [None, 1000, 3], ids=["unlimited", "plenty", "exhausted"])
async def test_statements_per_batch_do_not_grow_with_its_size(
    settings: Settings, quantity: int | None
) -> None:
    async with running(settings, workers=False) as platform:
        counts: dict[int, int] = {}
        for size in (5, 50):
            event_id = await open_drop(platform, quantity=quantity)
            await persist(platform, batch_of(event_id, 1))  # a batch that finds rows already
            batch = batch_of(event_id, size)
            consumer = issuance_of(platform).consumer()
            with statements(platform) as seen:
                await consumer.handle_batch(batch)
            counts[size] = len(seen)
            assert len(await claim_rows(platform, event_id)) == size + 1
        assert counts[5] == counts[50], counts
        assert counts[50] <= 12, counts


async def test_concurrent_batches_never_over_issue(settings: Settings) -> None:
    quantity, tasks, size = 20, 8, 10
    async with running(settings, workers=False) as platform:
        event_id = await open_drop(platform, quantity=quantity)
        users = [uuid.uuid4() for _ in range(tasks * size)]
        # Neighbouring batches share a few users: their claims race for the same rows too.
        batches = [
            [admitted(event_id, u) for u in users[i * size : (i + 1) * size + 3]]
            for i in range(tasks)
        ]
        await asyncio.gather(*(persist(platform, batch) for batch in batches))

        view = await db_view(platform, event_id)
        assert view.issued == view.rows == quantity
        assert view.closed_reason == "EXHAUSTED"
        assert await duplicate_holders(platform, event_id) == []
        rows = await claim_rows(platform, event_id)
        assert set(rows) == {claim_id(event_id, u) for u in users}
        statuses = [status for _, status, _, _, _ in rows.values()]
        assert statuses.count("ISSUED") == quantity
        assert {reason for _, status, reason, _, _ in rows.values() if status == "FAILED"} == {
            "sold out"
        }
        async with platform.databases.sessions_for("coupon")() as session:
            coupons = set(
                await session.scalars(select(UserCoupon.id).where(UserCoupon.event_id == event_id))
            )
        assert {coupon for _, _, _, coupon, _ in rows.values() if coupon} == coupons


async def test_a_batch_for_an_unknown_event_fails_each_claim(settings: Settings) -> None:
    async with running(settings, workers=False) as platform:
        event_id = uuid.uuid4()
        batch = batch_of(event_id, 3)
        await persist(platform, batch)
        rows = await claim_rows(platform, event_id)
        assert [rows[claim_of(e)][1:3] for e in batch] == [("FAILED", "event not found")] * 3


async def test_claims_of_several_events_in_one_batch_are_settled_per_event(
    settings: Settings,
) -> None:
    async with running(settings, workers=False) as platform:
        small = await open_drop(platform, quantity=2)
        large = await open_drop(platform, quantity=None, lasts=timedelta(hours=2))
        batch = [
            e for pair in zip(batch_of(small, 4), batch_of(large, 4), strict=True) for e in pair
        ]
        await persist(platform, batch)

        small_rows, large_rows = (
            await claim_rows(platform, small),
            await claim_rows(platform, large),
        )
        statuses = [small_rows[claim_of(e)][1] for e in batch if claim_of(e) in small_rows]
        assert statuses == ["ISSUED", "ISSUED", "FAILED", "FAILED"]
        assert {row[1] for row in large_rows.values()} == {"ISSUED"}
        assert (await db_view(platform, large)).issued == 4
        assert (await db_view(platform, small)).closed_reason == "EXHAUSTED"
