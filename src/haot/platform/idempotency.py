"""Idempotency-Key for writes, with Stripe's semantics.

The first request with a key stores its answer; a retry with the same key and the same request gets
that answer again (``Idempotent-Replayed: true``) without running twice; the same key with a
different request is 422; a retry while the first is still running is 409. Keys are scoped to the
caller (the subject of a *verified* token, else the client address), so two users cannot collide or
read each other's answers. Not stored: answers that invite a retry (5xx, and the 4xx that say
"later" or "with other credentials": 401, 403, 408, 425, 429), and answers marked
``Cache-Control: no-store`` (token responses: a stored copy would be a plaintext credential in the
database). An in-flight key whose process died is taken over after a lease; the lease doubles as a
fence, so a holder that lost its lease cannot overwrite the answer of the request that took over.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import anyio
import structlog
from sqlalchemy import JSON, Integer, LargeBinary, String, Table, bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.clock import utcnow
from haot.platform.db import Base, UtcDateTime
from haot.platform.errors import (
    HaotError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    PayloadTooLarge,
)
from haot.platform.problems import problem_response

log = structlog.get_logger(__name__)

_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_BODY = 1024 * 1024
_STORED_HEADERS = frozenset({b"content-type", b"location", b"retry-after"})
# Client errors that mean "retry later" or "retry with other credentials": storing them would
# replay the refusal for the key's whole lifetime.
_RETRYABLE_CLIENT_ERRORS = frozenset({401, 403, 408, 425, 429})


def is_stored(status: int) -> bool:
    return status < 500 and status not in _RETRYABLE_CLIENT_ERRORS


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"
    title = "Idempotency-Key must be 1-255 visible ASCII characters"


def checked_key(raw: str) -> str:
    """An Idempotency-Key as sent, or ``InvalidIdempotencyKey``."""
    if not 1 <= len(raw) <= 255 or not all(33 <= ord(c) <= 126 for c in raw):
        raise InvalidIdempotencyKey()
    return raw


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the request until ``locked_until``; that value is also the fence that
    ``finish`` and ``release`` check, so only the current holder writes."""

    scope: str
    key: str
    locked_until: datetime


class IdempotencyStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, ttl: timedelta, lease: timedelta
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._lease = lease
        engine: AsyncEngine = sessions.kw["bind"]
        postgres = engine.dialect.name == "postgresql"
        # One statement each for the common claim and finish: on PostgreSQL in autocommit (no
        # BEGIN/COMMIT round trips around a single statement); SQLite takes its write lock in
        # BEGIN IMMEDIATE (platform.db), so it keeps its transaction.
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        )
        self._claim = _claim_statement(pg_insert if postgres else sqlite_insert)

    @contextlib.asynccontextmanager
    async def _statement(self) -> AsyncIterator[AsyncConnection]:
        async with self._single.connect() as conn:
            yield conn
            if conn.in_transaction():
                await conn.commit()

    async def begin(self, scope: str, key: str, fingerprint: str) -> Claim | IdempotencyRecord:
        """Claim the key. A ``Claim``: go ahead and run the request. A record: replay its answer.
        Raises when the key is in flight elsewhere or was used for another request."""
        now = utcnow()
        locked_until = now + self._lease
        async with self._statement() as conn:
            claimed = (
                await conn.execute(
                    self._claim,
                    {
                        "scope": scope,
                        "key": key,
                        "fingerprint": fingerprint,
                        "locked_until": locked_until,
                        "response_status": None,
                        "response_headers": None,
                        "response_body": None,
                        "created_at": now,
                        "expires_at": now + self._ttl,
                    },
                )
            ).first()
        if claimed is not None:  # new, or an expired record replaced
            return Claim(scope, key, locked_until)
        async with self._sessions() as session, session.begin():
            record = await session.get(IdempotencyRecord, (scope, key))
            if record is None:  # released or expired between our statements: try again
                raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            if record.response_status is not None:
                return record
            if record.locked_until is not None and record.locked_until > now:
                raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.scope == scope,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.locked_until == record.locked_until,
                )
                .values(locked_until=locked_until)
            )
            if getattr(taken, "rowcount", 0) != 1:
                raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})
            return Claim(scope, key, locked_until)

    async def finish(
        self, claim: Claim, status: int, headers: list[list[str]], body: bytes
    ) -> bool:
        """Store the answer; False when the claim was lost (its lease expired and was taken)."""
        async with self._statement() as conn:
            result = await conn.execute(
                _FINISH,
                {
                    "p_scope": claim.scope,
                    "p_key": claim.key,
                    "p_locked_until": claim.locked_until,
                    "p_status": status,
                    "p_headers": headers,
                    "p_body": body,
                },
            )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def release(self, claim: Claim) -> None:
        """Forget the key so that a retry runs again (only while ``claim`` still holds it)."""
        async with self._sessions() as session, session.begin():
            await session.execute(delete(IdempotencyRecord).where(*self._held(claim)))

    @staticmethod
    def _held(claim: Claim) -> tuple[Any, ...]:
        return (
            IdempotencyRecord.scope == claim.scope,
            IdempotencyRecord.key == claim.key,
            IdempotencyRecord.locked_until == claim.locked_until,
            IdempotencyRecord.response_status.is_(None),
        )


_TABLE = cast(Table, IdempotencyRecord.__table__)
_KEYS = _TABLE.c


def _claim_statement(dialect_insert: Any) -> Any:
    """Insert the key, or take over a record of it whose time is up, in one statement; a row
    comes back only when the key is ours."""
    statement = dialect_insert(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=[_KEYS.scope, _KEYS.key],
        set_={name: statement.excluded[name] for name in _TAKEN_OVER},
        where=_KEYS.expires_at < statement.excluded.created_at,
    ).returning(_KEYS.scope)


_TAKEN_OVER = (
    "fingerprint",
    "locked_until",
    "response_status",
    "response_headers",
    "response_body",
    "created_at",
    "expires_at",
)

# Only the current holder writes: the lease it was given is the fence.
_FINISH = (
    update(_TABLE)
    .where(
        _KEYS.scope == bindparam("p_scope"),
        _KEYS.key == bindparam("p_key"),
        _KEYS.locked_until == bindparam("p_locked_until"),
        _KEYS.response_status.is_(None),
    )
    .values(
        response_status=bindparam("p_status"),
        response_headers=bindparam("p_headers", type_=JSON),
        response_body=bindparam("p_body", type_=LargeBinary),
        locked_until=None,
    )
)


async def _caller_scope(scope: Scope, headers: dict[bytes, bytes], platform: Any) -> str:
    """The subject of a verified, unrevoked bearer token, else the client address. An unverified
    subject must never pick the scope: a replay answers without running the route, so a forged
    token naming another user would read that user's stored answer, and a revoked one (log-out
    everywhere, password change, deactivation) would still read its own."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            principal = platform.signer.verify(token.strip())
            if not await platform.revocations.is_revoked(principal):
                return f"user:{principal.user_id}"
        except HaotError:
            pass  # the route answers 401 itself; until then the caller is anonymous
    client = scope.get("client")
    return f"anon:{client[0] if client else 'unknown'}"[:80]


class _DisconnectedError(Exception):
    """The client went away before its body arrived: nothing to run, nothing to answer."""


class IdempotencyMiddleware:
    """``keyed_by_route``: (method, path) of routes that keep their key with what they create,
    in their own transaction (a booking: ADR 0016); they validate the key themselves."""

    def __init__(
        self, app: ASGIApp, keyed_by_route: Collection[tuple[str, str]] = frozenset()
    ) -> None:
        self.app = app
        self._keyed_by_route = frozenset(keyed_by_route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _METHODS
            or (scope["method"], scope["path"]) in self._keyed_by_route
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, headers, raw_key)
        except _DisconnectedError:
            return
        except HaotError as exc:
            response = problem_response(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                instance=scope["path"],
                headers=exc.headers,
            )
            await response(scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], raw: bytes
    ) -> None:
        key = checked_key(raw.decode("latin-1"))
        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode()):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        fingerprint = digest.hexdigest()

        platform: Any = scope["app"].state.platform
        store: IdempotencyStore = platform.idempotency
        caller = await _caller_scope(scope, headers, platform)
        claimed = await store.begin(caller, key, fingerprint)
        if isinstance(claimed, IdempotencyRecord):
            await _replay(claimed, send)
            return

        captured: dict[str, Any] = {
            "status": 500,
            "headers": [],
            "body": bytearray(),
            "no_store": False,
        }
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() in _STORED_HEADERS
                ]
                captured["no_store"] = any(
                    k.lower() == b"cache-control" and b"no-store" in v.lower()
                    for k, v in message.get("headers", [])
                )
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.release(claimed)
            raise
        status: int = captured["status"]
        try:
            if not is_stored(status) or captured["no_store"]:
                await store.release(claimed)
            elif not await store.finish(
                claimed, status, captured["headers"], bytes(captured["body"])
            ):
                log.warning("idempotency_claim_lost", key_scope=caller, status=status)
        except Exception:
            # The client has its answer already; the key stays in flight until its lease ends.
            log.exception("idempotency_store_failed", key_scope=caller, status=status)


async def _read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError()
        chunks.extend(message.get("body", b""))
        if len(chunks) > _MAX_BODY:
            raise PayloadTooLarge("Request body too large")
        if not message.get("more_body", False):
            break
    return bytes(chunks)


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record.response_headers or []]
    headers.append((b"idempotent-replayed", b"true"))
    body = record.response_body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send(
        {"type": "http.response.start", "status": record.response_status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})
