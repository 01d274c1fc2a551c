"""Idempotency-Key for writes, with Stripe's semantics.

The first request with a key stores its answer; a retry with the same key and the same request gets
that answer again (``Idempotent-Replayed: true``) without running twice; the same key with a
different request is 422; a retry while the first is still running is 409. Keys are scoped to the
caller (token subject), so two users cannot collide or read each other's answers. A 5xx answer is
not stored (the client may retry); an in-flight key whose process died is taken over after a lease.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import JSON, Integer, LargeBinary, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.clock import utcnow
from haot.platform.db import Base, UtcDateTime
from haot.platform.errors import HaotError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidInput
from haot.platform.problems import problem_response

_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_BODY = 1024 * 1024
_STORED_HEADERS = frozenset({b"content-type", b"location", b"retry-after"})


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"
    title = "Idempotency-Key must be 1-255 visible ASCII characters"


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


class IdempotencyStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, ttl: timedelta, lease: timedelta
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._lease = lease

    async def begin(self, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key. None: go ahead and run the request. A record: replay its answer.
        Raises when the key is in flight elsewhere or was used for another request."""
        now = utcnow()
        async with self._sessions() as session:
            try:
                async with session.begin():
                    await session.execute(
                        delete(IdempotencyRecord).where(
                            IdempotencyRecord.scope == scope,
                            IdempotencyRecord.key == key,
                            IdempotencyRecord.expires_at < now,
                        )
                    )
                    session.add(
                        IdempotencyRecord(
                            scope=scope,
                            key=key,
                            fingerprint=fingerprint,
                            locked_until=now + self._lease,
                            created_at=now,
                            expires_at=now + self._ttl,
                        )
                    )
                return None
            except IntegrityError:
                pass
            async with session.begin():
                record = await session.get(IdempotencyRecord, (scope, key))
                if record is None:  # expired and deleted between our statements: try again
                    raise IdempotencyKeyInFlight()
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
                    .values(locked_until=now + self._lease)
                )
                if getattr(taken, "rowcount", 0) != 1:
                    raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})
                return None

    async def finish(
        self, scope: str, key: str, status: int, headers: list[list[str]], body: bytes
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
                .values(
                    response_status=status,
                    response_headers=headers,
                    response_body=body,
                    locked_until=None,
                )
            )

    async def release(self, scope: str, key: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.response_status.is_(None),
                )
            )

    async def purge_expired(self) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < utcnow())
            )
        return int(getattr(result, "rowcount", 0) or 0)


def _caller_scope(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The token subject, read without verification: the route itself still authenticates, and a
    forged subject only files the key under a scope whose answer will be a 401."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    _, _, token = auth.partition(" ")
    if token:
        try:
            sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
            if isinstance(sub, str) and sub:
                return f"user:{sub[:64]}"
        except jwt.PyJWTError:
            return "invalid-token"
    client = scope.get("client")
    return f"anon:{client[0] if client else 'unknown'}"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, headers, raw_key)
        except HaotError as exc:
            response = problem_response(
                status=exc.status, code=exc.code, title=exc.title, detail=exc.detail,
                instance=scope["path"], headers=exc.headers,
            )
            await response(scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], raw: bytes
    ) -> None:
        key = raw.decode("latin-1")
        if not 1 <= len(key) <= 255 or not all(33 <= ord(c) <= 126 for c in key):
            raise InvalidIdempotencyKey()
        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode()):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        fingerprint = digest.hexdigest()

        platform: Any = scope["app"].state.platform
        store: IdempotencyStore = platform.idempotency
        caller = _caller_scope(scope, headers)
        stored = await store.begin(caller, key, fingerprint)
        if stored is not None:
            await _replay(stored, send)
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}
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
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await store.release(caller, key)
            raise
        if captured["status"] >= 500:
            await store.release(caller, key)
        else:
            await store.finish(
                caller, key, captured["status"], captured["headers"], bytes(captured["body"])
            )


async def _read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.extend(message.get("body", b""))
        if len(chunks) > _MAX_BODY:
            from haot.platform.errors import PayloadTooLarge

            raise PayloadTooLarge("Request body too large")
        if not message.get("more_body", False):
            break
    return bytes(chunks)


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record.response_headers or []]
    headers.append((b"idempotent-replayed", b"true"))
    body = record.response_body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": record.response_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
