"""Service credentials for calls between contexts (ADR 0018).

A calling context presents a short-lived HS256 token: signed with a key of their own (never the
users' key), ``sub`` the caller, ``aud`` ``haot-service:<callee>``. A user's access token is never
accepted where a service is expected, nor a service token where a user is: different key,
different audience. Tokens are minted per callee and reused until shortly before they lapse.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import jwt

from haot.platform.errors import Forbidden, Unauthorized

ISSUER = "haot"
ALGORITHM = "HS256"


def audience(callee: str) -> str:
    return f"haot-service:{callee}"


class ServiceTokens:
    def __init__(self, secret: str, *, caller: str, ttl_seconds: int = 60) -> None:
        self._secret = secret
        self._caller = caller
        self._ttl = ttl_seconds
        self._minted: dict[str, tuple[str, float]] = {}

    def for_callee(self, callee: str, *, now: float | None = None) -> str:
        """A token for calls to ``callee``, reused until 15 s before it lapses."""
        now = time.time() if now is None else now
        minted = self._minted.get(callee)
        if minted is not None and minted[1] - 15 > now:
            return minted[0]
        expires = now + self._ttl
        claims = {
            "iss": ISSUER,
            "sub": self._caller,
            "aud": audience(callee),
            "iat": int(now),
            "exp": int(expires),
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        self._minted[callee] = (token, expires)
        return token


def verify_service_token(secret: str, token: str, *, callee: str, callers: Collection[str]) -> str:
    """The calling context of a token meant for ``callee``; 401 for a token that is not one (a
    user's included), 403 for a context not among ``callers``."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience(callee),
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("not a service credential for this context") from exc
    caller = str(claims["sub"])
    if caller not in callers:
        raise Forbidden(f"{caller} may not call this")
    return caller
