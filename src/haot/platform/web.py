"""FastAPI edge helpers shared by every context's ``api.py``: the platform handle, the principal
and role guards as ``Annotated`` aliases, and pagination parameters."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar

import structlog
from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from haot.platform.auth import Principal, Role
from haot.platform.container import Platform
from haot.platform.errors import Forbidden, HaotError, InvalidToken, Unauthorized
from haot.platform.ids import parse_id
from haot.platform.service_auth import verify_service_token
from haot.platform.settings import Settings

T = TypeVar("T")

API_PREFIX = "/api/v1"


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _platform_dependency(request: Request) -> Platform:
    # async: FastAPI runs plain ``def`` dependencies in a thread pool, a hand-off per request.
    return get_platform(request)


PlatformDep = Annotated[Platform, Depends(_platform_dependency)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(platform: Platform, authorization: str | None) -> Principal | None:
    """The principal of an ``Authorization: Bearer`` header (None without one): signature, claims
    and the user's revocation stamp checked; a bad or revoked token raises. Once accepted, its
    user id is in every log line of the request."""
    token = _bearer(authorization)
    if token is None:
        return None
    principal = platform.signer.verify(token)
    if await platform.revocations.is_revoked(principal):
        raise InvalidToken("Token has been revoked")
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    return principal


# Declares the bearer scheme in OpenAPI (the Authorize button of /docs); ``authenticate`` still
# reads and judges the header itself.
bearer_scheme = HTTPBearer(auto_error=False, description="An access token from POST /auth/login")


async def optional_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Principal | None:
    principal = await authenticate(get_platform(request), request.headers.get("authorization"))
    if principal is not None:
        request.state.principal = principal
    return principal


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized()
    return principal


def require_roles(*roles: Role) -> object:
    allowed = frozenset(roles)

    async def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"Requires role {' or '.join(sorted(allowed))}")
        return principal

    return Depends(guard)


# A browser's EventSource cannot send an Authorization header, so streams also accept an access
# token in this cookie (set by POST /auth/session). Only streams read it: they are GETs that
# change nothing, so a cross-site page gains nothing by making the browser send it (and
# SameSite=Lax keeps it off cross-site subrequests anyway). Writes still need the header.
SESSION_COOKIE = "haot_session"


def session_cookie_attributes(settings: Settings) -> dict[str, Any]:
    """The attributes session cookies are set and removed with (they must match): HttpOnly,
    SameSite=Lax, Secure in production."""
    return {
        "path": "/",
        "secure": settings.env == "production",
        "httponly": True,
        "samesite": "lax",
    }


async def stream_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Principal:
    platform = get_platform(request)
    principal = await authenticate(platform, request.headers.get("authorization"))
    if principal is None and (token := request.cookies.get(SESSION_COOKIE)):
        principal = await authenticate(platform, f"Bearer {token}")
    if principal is None:
        raise Unauthorized()
    request.state.principal = principal
    return principal


def require_service(callee: str, *callers: str) -> object:
    """An internal route of ``callee`` (ADR 0018): only the named calling contexts, with a service
    token meant for ``callee``; a user's token is refused (401) whatever its role."""

    async def guard(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        secret = get_platform(request).settings.service_token_secret
        return verify_service_token(secret, token, callee=callee, callers=callers)

    return Depends(guard)


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
StreamUser = Annotated[Principal, Depends(stream_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
HostOnly = Annotated[Principal, require_roles(Role.HOST, Role.ADMIN)]
AdminOnly = Annotated[Principal, require_roles(Role.ADMIN)]


class PageParams(BaseModel):
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


async def page_params(
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PageParams:
    return PageParams(page=page, size=size)


Paging = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    page: int
    size: int
    total: int

    @classmethod
    def of(
        cls, rows: Iterable[Any], total: int, paging: PageParams, read: Callable[[Any], T]
    ) -> Page[T]:
        """A page of ``rows`` (one page of a query whose full count is ``total``)."""
        return cls(
            items=[read(row) for row in rows], page=paging.page, size=paging.size, total=total
        )


def path_id(raw: str, not_found: type[HaotError]) -> uuid.UUID:
    """The UUID in a path segment; anything else is the resource's 404, never a 422 or 500."""
    parsed = parse_id(raw)
    if parsed is None:
        raise not_found()
    return parsed
