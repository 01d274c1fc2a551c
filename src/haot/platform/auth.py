"""Auth primitives every context shares: roles, the principal, and access-token signing.

Access tokens are short-lived JWTs (HS256 pinned, ``iss``/``aud``/``exp`` required). Contexts trust
only a principal derived from a verified token, never identity headers from clients.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
import orjson
import structlog

from haot.platform.clock import utcnow
from haot.platform.errors import InvalidToken
from haot.platform.ids import new_id
from haot.platform.redis import Redis, as_text

log = structlog.get_logger(__name__)

ALGORITHM = "HS256"
_LEEWAY_SECONDS = 5
# The header ``issue`` writes (PyJWT's, for HS256): tokens carrying it exactly take the fast check.
_HEADER_SEGMENT = (
    base64.urlsafe_b64encode(orjson.dumps({"alg": ALGORITHM, "typ": "JWT"})).rstrip(b"=").decode()
)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


class Role(StrEnum):
    USER = "USER"
    HOST = "HOST"
    ADMIN = "ADMIN"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    issued_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class TokenSigner:
    def __init__(self, secret: str, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("JWT secret must be at least 32 bytes")
        self._secret = secret
        self._key = secret.encode()
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: uuid.UUID, role: Role, *, now: datetime | None = None) -> AccessToken:
        issued = now or utcnow()
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "iss": self._issuer,
            "aud": self._audience,
            # RFC 7519 NumericDate may carry fractions; microseconds (the clock's resolution) let
            # a revocation stamp separate tokens issued just before it from those issued after.
            "iat": round(issued.timestamp(), 6),
            "exp": int((issued + timedelta(seconds=self.ttl_seconds)).timestamp()),
            "jti": str(new_id()),
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return AccessToken(token=token, expires_in=self.ttl_seconds)

    def verify(self, token: str) -> Principal:
        claims = self._verify_own(token)
        if claims is None:
            claims = self._verify_any(token)
        try:
            return Principal(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                issued_at=datetime.fromtimestamp(float(claims["iat"]), tz=UTC),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc

    def _verify_any(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=_LEEWAY_SECONDS,
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc
        return claims

    def _verify_own(self, token: str) -> dict[str, Any] | None:
        """The claims of a token exactly as ``issue`` writes them (this header, a valid
        signature, every claim of the expected type and in its window), checked in a few
        microseconds; None for anything else, which ``_verify_any`` (PyJWT, ~15x slower) then
        decides. So this path only ever accepts what PyJWT would accept too (a differential test
        holds it to that), and it rejects nothing by itself."""
        header, dot, rest = token.partition(".")
        if header != _HEADER_SEGMENT or not dot:
            return None
        payload_segment, dot, signature_segment = rest.partition(".")
        if not dot or not _SEGMENT.fullmatch(payload_segment):
            return None
        if not _SEGMENT.fullmatch(signature_segment) or len(signature_segment) != 43:
            return None
        expected = hmac.new(self._key, f"{header}.{payload_segment}".encode(), hashlib.sha256)
        signature = base64.urlsafe_b64decode(signature_segment + "=")
        if not hmac.compare_digest(expected.digest(), signature):
            return None
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(_padded(payload_segment)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict) or "nbf" in claims:
            return None
        exp, iat = claims.get("exp"), claims.get("iat")
        if isinstance(exp, bool) or isinstance(iat, bool):  # JSON true is no timestamp
            return None
        if not isinstance(exp, int) or not isinstance(iat, int | float):
            return None
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti", ""), str):
            return None
        if claims.get("iss") != self._issuer or claims.get("aud") != self._audience:
            return None
        now = time.time()
        if int(iat) > now + _LEEWAY_SECONDS or exp <= now - _LEEWAY_SECONDS:
            return None
        return claims


def _padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


_STAMP_FORWARD = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
end
return 1
"""


class Revocations:
    """Access tokens are stateless, so revoking them early needs one shared fact per user: "every
    token issued before T is void". Deactivation, role change and password change stamp T (logout
    revokes the refresh session only: access tokens of other devices stay valid until expiry);
    the stamp lives as long as the longest access token could.

    Every request checks it, so each process keeps a replica of all live stamps (there are few:
    only the last token lifetime's revocations) instead of asking Redis each time: ``follow``
    subscribes to the revocation channel, then loads the index, then applies each published
    stamp, and reloads every ``resync_seconds`` in case a message was lost. A stamp reaches the
    other processes as fast as Redis delivers the message (the revoking process applies it at
    once). Whenever the replica is not in sync (starting, connection lost), the check reads the
    user's key in Redis as before: never a silent gap.
    """

    CHANNEL = "auth:revocations"
    INDEX = "auth:revocation-index"

    def __init__(self, redis: Redis, *, ttl_seconds: int, resync_seconds: float = 10.0) -> None:
        self._redis = redis
        self._ttl = ttl_seconds + 60
        self._resync = resync_seconds
        self._stamps: dict[uuid.UUID, float] = {}
        self._synced = False

    @staticmethod
    def key(user_id: uuid.UUID) -> str:
        return f"auth:revoked-before:{{{user_id}}}"

    @property
    def in_sync(self) -> bool:
        return self._synced

    async def revoke_tokens_issued_before(self, user_id: uuid.UUID, when: datetime) -> None:
        stamp = round(when.timestamp(), 6)  # the resolution of the tokens' ``iat``
        # The key first (readers out of sync), then the index, then the message: a replica that
        # subscribes after the message was sent loads the index after it was written.
        pipe = self._redis.pipeline(transaction=False)
        # Only ever forward: a revocation delivered late (the outbox retrying it) must not
        # lower a later one, or tokens it voided would be valid again.
        pipe.eval(_STAMP_FORWARD, 1, self.key(user_id), f"{stamp:.6f}", self._ttl)
        pipe.zadd(self.INDEX, {str(user_id): stamp}, gt=True)
        pipe.zremrangebyscore(self.INDEX, "-inf", f"({time.time() - self._ttl}")
        pipe.publish(self.CHANNEL, f"{user_id} {stamp:.6f}")
        await pipe.execute()
        self._remember(user_id, stamp)

    async def is_revoked(self, principal: Principal) -> bool:
        if self._synced:
            stamp = self._stamps.get(principal.user_id)
        else:
            raw = await self._redis.get(self.key(principal.user_id))
            stamp = None if raw is None else float(raw)
        # "<=": a token from the very microsecond of the stamp may predate the change; void it.
        return stamp is not None and principal.issued_at.timestamp() <= stamp

    def _remember(self, user_id: uuid.UUID, stamp: float) -> None:
        if stamp > self._stamps.get(user_id, float("-inf")):
            self._stamps[user_id] = stamp

    async def _load(self) -> None:
        horizon = time.time() - self._ttl
        rows: Any = await self._redis.zrangebyscore(self.INDEX, horizon, "+inf", withscores=True)
        for member, score in rows:
            self._remember(uuid.UUID(as_text(member)), float(score))
        # Stamps older than any live token can void nothing: drop them.
        for user_id in [u for u, stamp in self._stamps.items() if stamp < horizon]:
            del self._stamps[user_id]

    async def follow(self, stop: asyncio.Event) -> None:
        """Keep the replica in sync until ``stop`` (seen within a quarter second: the platform
        waits for its tasks to return when it stops); reconnects with backoff."""
        backoff = 0.1
        while not stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.CHANNEL)
                while not stop.is_set():  # subscribed only once Redis confirms
                    message = await pubsub.get_message(timeout=0.25)
                    if message is not None and message["type"] == "subscribe":
                        break
                await self._load()
                self._synced = True
                backoff = 0.1
                loaded = time.monotonic()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.25)
                    if message is not None and message["type"] == "message":
                        user, _, stamp = as_text(message["data"]).partition(" ")
                        self._remember(uuid.UUID(user), float(stamp))
                    if time.monotonic() - loaded >= self._resync:
                        await self._load()
                        loaded = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("revocation_replica_lost", error=type(exc).__name__)
            finally:
                self._synced = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, 5.0)
