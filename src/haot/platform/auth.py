"""Auth primitives every context shares: roles, the principal, and access-token signing.

Access tokens are short-lived JWTs (HS256 pinned, ``iss``/``aud``/``exp`` required). Contexts trust
only a principal derived from a verified token, never identity headers from clients.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

from haot.platform.clock import utcnow
from haot.platform.errors import InvalidToken
from haot.platform.ids import new_id
from haot.platform.redis import Redis

ALGORITHM = "HS256"


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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=5,
            )
            return Principal(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                issued_at=datetime.fromtimestamp(float(claims["iat"]), tz=UTC),
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc


class Revocations:
    """Access tokens are stateless, so revoking them early needs one shared fact per user: "every
    token issued before T is void". Deactivation, role change and password change stamp T (logout
    revokes the refresh session only: access tokens of other devices stay valid until expiry);
    the stamp lives as long as the longest access token could."""

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds + 60

    @staticmethod
    def key(user_id: uuid.UUID) -> str:
        return f"auth:revoked-before:{{{user_id}}}"

    async def revoke_tokens_issued_before(self, user_id: uuid.UUID, when: datetime) -> None:
        await self._redis.set(self.key(user_id), f"{when.timestamp():.6f}", ex=self._ttl)

    async def is_revoked(self, principal: Principal) -> bool:
        # "<=": a token from the very microsecond of the stamp may predate the change; void it.
        stamp = await self._redis.get(self.key(principal.user_id))
        return stamp is not None and principal.issued_at.timestamp() <= float(stamp)
