"""Coupon drop helpers shared by the tests of this package.

- ``running``: the all-in-one platform on the settings under test (in-memory payment gateway),
  optionally with its relays, consumers, claim pump and jobs running in-process.
- ``open_drop``: a coupon template and an event at the service layer.
- ``claim`` / ``drive``: claims straight into ``Issuance.claim`` (the hot path without HTTP), each
  answer recorded as the status and problem code the API would send.
- ``settle`` / ``db_view`` / ``redis_view``: wait until admitted claims are persisted, then compare
  what Redis and the database say.
- ``serve``: the real app (``create_app``) over ASGI, with minted tokens.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from haot.app import create_app
from haot.bootstrap import build_platform
from haot.coupon.drops import Drops, event_key, users_key
from haot.coupon.issuance import Issuance
from haot.coupon.models import Claim, CouponEvent, UserCoupon
from haot.coupon.schemas import CouponCreate, EventCreate
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.errors import HaotError
from haot.platform.settings import Settings
from tests.support.gateway import InMemoryGateway

ACCEPTED = "accepted"


@asynccontextmanager
async def running(settings: Settings, *, workers: bool = True) -> AsyncIterator[Platform]:
    platform = build_platform(settings, gateway=InMemoryGateway())
    await platform.start()
    if workers:
        platform.start_workers()
    try:
        yield platform
    finally:
        await platform.stop()


def issuance_of(platform: Platform) -> Issuance:
    issuance: Issuance = platform.services["coupon.issuance"]
    return issuance


async def open_drop(
    platform: Platform,
    *,
    quantity: int | None,
    starts_in: timedelta = timedelta(seconds=-5),
    lasts: timedelta = timedelta(hours=1),
    **coupon: Any,
) -> uuid.UUID:
    """An event of a 10 % coupon (or ``coupon`` terms) open from ``starts_in`` for ``lasts``."""
    service = platform.services["coupon"]
    now = utcnow()
    terms: dict[str, Any] = {
        "name": "Drop",
        "discount_type": "PERCENT",
        "discount_value": 10,
        "max_discount": 30_000,
        "min_order_amount": 0,
        "valid_from": now - timedelta(days=1),
        "valid_to": now + timedelta(days=30),
        **coupon,
    }
    template = await service.create_coupon(CouponCreate(**terms))
    starts_at = now + starts_in
    event = await service.create_event(
        EventCreate(
            coupon_id=template.id,
            starts_at=starts_at,
            ends_at=starts_at + lasts,
            quantity=quantity,
        )
    )
    return uuid.UUID(str(event.id))


@dataclass(frozen=True, slots=True)
class Answer:
    """One claim's answer, as the API would send it (``status``, problem ``code``)."""

    user: uuid.UUID
    status: int
    code: str
    claim_id: str | None = None
    retry_after: int | None = None
    at: float = 0.0  # time.monotonic() when the answer came


async def claim(issuance: Issuance, event_id: uuid.UUID, user: uuid.UUID) -> Answer:
    try:
        accepted = await issuance.claim(event_id, user)
    except HaotError as exc:
        retry = exc.headers.get("Retry-After")
        return Answer(
            user,
            exc.status,
            exc.code,
            retry_after=int(retry) if retry is not None else None,
            at=time.monotonic(),
        )
    except Exception as exc:  # the API would answer 500
        return Answer(user, 500, f"internal_error: {exc!r}", at=time.monotonic())
    return Answer(user, 202, ACCEPTED, claim_id=accepted.claim_id, at=time.monotonic())


async def drive(
    issuance: Issuance,
    event_id: uuid.UUID,
    attempts: Sequence[uuid.UUID],
    *,
    concurrency: int = 500,
    on_answer: Callable[[Answer], None] | None = None,
    retry_unavailable: int = 0,
) -> list[Answer]:
    """Claim once per entry of ``attempts`` (a user id), ``concurrency`` at a time. A 503 is
    retried up to ``retry_unavailable`` times after a short pause (every answer is recorded)."""
    answers: list[Answer] = []

    async def one(user: uuid.UUID) -> None:
        for attempt in range(retry_unavailable + 1):
            answer = await claim(issuance, event_id, user)
            answers.append(answer)
            if on_answer is not None:
                on_answer(answer)
            if answer.status != 503 or attempt == retry_unavailable:
                return
            await asyncio.sleep(0.05)

    for start in range(0, len(attempts), concurrency):
        await asyncio.gather(*(one(user) for user in attempts[start : start + concurrency]))
    return answers


def accepted(answers: Sequence[Answer]) -> list[Answer]:
    return [a for a in answers if a.status == 202]


@dataclass(frozen=True, slots=True)
class DbView:
    issued: int  # coupon_events.issued
    closed_reason: str | None
    coupons: dict[uuid.UUID, list[str]]  # user → statuses of their coupons of this event
    claims: dict[str, tuple[str, uuid.UUID | None]]  # claim id → (status, user coupon id)

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.coupons.values())


async def db_view(platform: Platform, event_id: uuid.UUID) -> DbView:
    async with platform.databases.sessions_for("coupon")() as session:
        event = await session.get(CouponEvent, event_id)
        assert event is not None
        coupons: dict[uuid.UUID, list[str]] = {}
        for user_id, status in (
            await session.execute(
                select(UserCoupon.user_id, UserCoupon.status).where(UserCoupon.event_id == event_id)
            )
        ).all():
            coupons.setdefault(user_id, []).append(status)
        claims = {
            row.id: (row.status, row.user_coupon_id)
            for row in await session.scalars(select(Claim).where(Claim.event_id == event_id))
        }
        return DbView(event.issued, event.closed_reason, coupons, claims)


async def duplicate_holders(platform: Platform, event_id: uuid.UUID) -> list[uuid.UUID]:
    async with platform.databases.sessions_for("coupon")() as session:
        rows = await session.execute(
            select(UserCoupon.user_id)
            .where(UserCoupon.event_id == event_id)
            .group_by(UserCoupon.user_id)
            .having(func.count() > 1)
        )
        return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class RedisView:
    state: str | None
    remaining: int | None
    users: int
    backlog: int


async def redis_view(platform: Platform, event_id: uuid.UUID) -> RedisView:
    drops = Drops(platform.redis)
    state = await platform.redis.hget(event_key(event_id), "state")
    remaining = (await drops.remaining([event_id]))[event_id]
    return RedisView(
        state=state,
        remaining=remaining,
        users=int(await platform.redis.scard(users_key(event_id))),
        backlog=await drops.backlog(event_id),
    )


async def settle(
    platform: Platform,
    event_id: uuid.UUID,
    claim_ids: Sequence[str],
    *,
    within: float = 30.0,
) -> DbView:
    """Wait until the claim stream is empty and every claim in ``claim_ids`` has its row."""
    deadline = time.monotonic() + within
    wanted = set(claim_ids)
    while True:
        view = await db_view(platform, event_id)
        backlog = await Drops(platform.redis).backlog(event_id)
        if backlog == 0 and wanted <= view.claims.keys():
            # Read again: the queries of one view see different snapshots (read committed), and
            # a batch may have committed between the first and the last.
            return await db_view(platform, event_id)
        if time.monotonic() > deadline:
            missing = len(wanted - view.claims.keys())
            raise AssertionError(f"not settled in {within}s: backlog {backlog}, {missing} missing")
        await asyncio.sleep(0.05)


# HTTP ------------------------------------------------------------------------------------------


@dataclass
class Api:
    http: httpx.AsyncClient
    platform: Platform

    def auth(self, role: Role = Role.USER, user_id: uuid.UUID | None = None) -> dict[str, str]:
        token = self.platform.signer.issue(user_id or uuid.uuid4(), role).token
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(Role.ADMIN)


@asynccontextmanager
async def serve(settings: Settings, *, run_workers: bool | None = None) -> AsyncIterator[Api]:
    """``create_app`` over ASGI (relays, consumers, pump and jobs in-process unless
    ``run_workers=False``)."""
    app = create_app(settings, gateway=InMemoryGateway(), run_workers=run_workers)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app.state.platform)


def problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, str(response.json()["code"])


async def http_drop(
    api: Api,
    *,
    quantity: int | None,
    starts_in: timedelta = timedelta(seconds=-5),
    lasts: timedelta = timedelta(hours=1),
    **coupon: Any,
) -> str:
    """The same as ``open_drop`` through the admin API."""
    now = utcnow()
    body: dict[str, Any] = {
        "name": "Drop",
        "discount_type": "PERCENT",
        "discount_value": 10,
        "max_discount": 30_000,
        "min_order_amount": 0,
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_to": (now + timedelta(days=30)).isoformat(),
        **coupon,
    }
    created = await api.http.post("/api/v1/admin/coupons", headers=api.admin, json=body)
    assert created.status_code == 201, created.text
    starts_at = now + starts_in
    event = await api.http.post(
        "/api/v1/admin/coupon-events",
        headers=api.admin,
        json={
            "coupon_id": created.json()["id"],
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + lasts).isoformat(),
            "quantity": quantity,
        },
    )
    assert event.status_code == 201, event.text
    return str(event.json()["id"])
