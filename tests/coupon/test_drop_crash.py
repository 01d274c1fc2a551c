"""Crashes between Redis admission and the database: the persist consumer failing or killed in the
middle of a batch, the pump dying between publishing and acknowledging. Whatever happens, each
accepted claim ends as exactly one row (no loss, no duplicate).

The pump and the consumer are driven by hand here (``pump_once``), so each crash lands where the
test puts it. A kill is a ``BaseException`` that no ``except Exception`` catches, as a process
that dies never gets to clean up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from haot.coupon import drops as drops_module
from haot.coupon.drops import Drops
from haot.coupon.issuance import Issuance
from haot.platform.container import Platform
from haot.platform.events import Event
from haot.platform.inbox import InboxEntry
from haot.platform.metrics import EVENTS_DUPLICATE
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork
from tests.coupon.conftest import (
    accepted,
    db_view,
    drive,
    duplicate_holders,
    issuance_of,
    open_drop,
    redis_view,
    running,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres"]),
]

QUANTITY = 30


class Killed(BaseException):
    """The process died here."""


def fail_persist_once(
    monkeypatch: pytest.MonkeyPatch, *, on_claim: int, error: BaseException
) -> list[int]:
    """From now on, the ``on_claim``-th claim handed to ``persist_batch`` raises ``error`` (once),
    after the claims before it in its batch were applied in the batch's transaction. Returns the
    size of every batch handed over. Patch before the platform is built: the consumer binds
    ``Issuance.persist_batch`` when it is wired."""
    sizes: list[int] = []
    original = Issuance.persist_batch

    async def persist_batch(self: Issuance, uow: UnitOfWork, events: Sequence[Event]) -> None:
        before = sum(sizes)
        sizes.append(len(events))
        if before < on_claim <= before + len(events):
            await original(self, uow, events[: on_claim - before - 1])
            raise error
        await original(self, uow, events)

    monkeypatch.setattr(Issuance, "persist_batch", persist_batch)
    return sizes


async def admit(platform: Platform) -> tuple[uuid.UUID, list[str]]:
    """A drop of QUANTITY with QUANTITY + 10 claimants: the accepted claim ids."""
    event_id = await open_drop(platform, quantity=QUANTITY)
    answers = await drive(
        issuance_of(platform), event_id, [uuid.uuid4() for _ in range(QUANTITY + 10)]
    )
    claims = [a.claim_id for a in accepted(answers) if a.claim_id]
    assert len(claims) == QUANTITY
    return event_id, claims


async def inbox_rows(platform: Platform) -> int:
    async with platform.databases.sessions_for("coupon")() as session:
        statement = select(func.count()).where(InboxEntry.consumer == "coupon.claims")
        return int((await session.execute(statement)).scalar_one())


async def assert_exactly_once(platform: Platform, event_id: uuid.UUID, claims: list[str]) -> None:
    view = await db_view(platform, event_id)
    assert view.rows == view.issued == QUANTITY
    assert set(view.claims) == set(claims)
    assert {status for status, _ in view.claims.values()} == {"ISSUED"}
    assert await duplicate_holders(platform, event_id) == []
    assert await inbox_rows(platform) == QUANTITY
    cache = await redis_view(platform, event_id)
    assert cache.backlog == 0
    assert cache.remaining == 0
    assert cache.users == QUANTITY


async def test_persist_failing_mid_batch_is_retried_event_by_event(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = fail_persist_once(monkeypatch, on_claim=12, error=RuntimeError("database hiccup"))
    async with running(settings, workers=False) as platform:
        event_id, claims = await admit(platform)
        issuance = issuance_of(platform)

        assert await issuance.pump_once(platform.transport) == QUANTITY
        # The batch rolled back at its 12th claim, then every claim was applied on its own.
        assert sizes == [QUANTITY] + [1] * QUANTITY
        await assert_exactly_once(platform, event_id, claims)


async def test_consumer_killed_mid_batch_redelivers_without_loss_or_duplicate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = fail_persist_once(monkeypatch, on_claim=12, error=Killed())
    async with running(settings, workers=False) as platform:
        event_id, claims = await admit(platform)
        issuance = issuance_of(platform)

        with pytest.raises(Killed):
            await issuance.pump_once(platform.transport)
        assert (await db_view(platform, event_id)).rows == 0  # the batch's transaction is gone
        assert (await redis_view(platform, event_id)).backlog == QUANTITY  # nothing acknowledged

        # The worker comes back under the same name: its pending claims come first.
        assert await issuance.pump_once(platform.transport) == QUANTITY
        assert sizes == [QUANTITY, QUANTITY]  # the whole batch again, applied in one go
        await assert_exactly_once(platform, event_id, claims)
        assert await issuance.pump_once(platform.transport) == 0


async def test_claims_of_a_worker_that_never_comes_back_are_taken_over(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted process has another name (host-pid): the claims the dead one had read stay
    pending under the dead name unless a live pump takes them over once they are idle long
    enough."""
    monkeypatch.setattr(drops_module, "RECLAIM_IDLE_MS", 200)
    fail_persist_once(monkeypatch, on_claim=5, error=Killed())
    async with running(settings, workers=False) as platform:
        event_id, claims = await admit(platform)
        with pytest.raises(Killed):
            await issuance_of(platform).pump_once(platform.transport)

        successor = Issuance(
            uow=platform.uow_factory("coupon"),
            drops=Drops(platform.redis),
            redis=platform.redis,
            live=platform.live,
            worker_name="successor",
        )
        # Not yet idle long enough: a live worker may still be busy with them.
        assert await successor.pump_once(platform.transport) == 0
        for _ in range(50):
            if await successor.pump_once(platform.transport):
                break
            await asyncio.sleep(0.05)
        await assert_exactly_once(platform, event_id, claims)


async def test_pump_dying_between_publish_and_ack_is_deduplicated_by_the_inbox(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Drops.ack
    died = [False]

    async def ack(self: Drops, *args: Any, **kwargs: Any) -> None:
        if not died[0]:
            died[0] = True
            raise Killed()
        await original(self, *args, **kwargs)

    monkeypatch.setattr(Drops, "ack", ack)
    async with running(settings, workers=False) as platform:
        event_id, claims = await admit(platform)
        issuance = issuance_of(platform)
        duplicates = EVENTS_DUPLICATE.labels("coupon.claims")._value.get()

        with pytest.raises(Killed):
            await issuance.pump_once(platform.transport)
        view = await db_view(platform, event_id)
        assert view.rows == QUANTITY  # published (and, in-process, applied) ...
        assert (await redis_view(platform, event_id)).backlog == QUANTITY  # ... never acked

        assert await issuance.pump_once(platform.transport) == QUANTITY  # published again
        assert EVENTS_DUPLICATE.labels("coupon.claims")._value.get() - duplicates == QUANTITY
        await assert_exactly_once(platform, event_id, claims)
