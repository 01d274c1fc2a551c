"""HTTP routes of the identity context: thin; rules live in ``service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from haot.identity.schemas import (
    AdminUserUpdate,
    LogIn,
    PasswordChange,
    RefreshRequest,
    SignUp,
    TokenPair,
    UserRead,
    UserUpdate,
)
from haot.identity.service import IdentityService, InvalidCredentials, UserNotFound
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.domain_docs import problems
from haot.platform.ratelimit import Delays, Rate
from haot.platform.web import (
    API_PREFIX,
    SESSION_COOKIE,
    AdminOnly,
    CurrentUser,
    Page,
    Paging,
    PlatformDep,
    path_id,
    session_cookie_attributes,
)

router = APIRouter(prefix=API_PREFIX, tags=["identity"])


async def identity_service(platform: PlatformDep) -> IdentityService:
    service: IdentityService = platform.services["identity"]
    return service


Identity = Annotated[IdentityService, Depends(identity_service)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problems(409, 422, 429),
)
async def sign_up(
    body: SignUp, identity: Identity, platform: PlatformDep, request: Request
) -> UserRead:
    await platform.rate_limiter.hit(
        "signup-ip", _client_ip(request), Rate(platform.settings.login_ip_rate_per_minute, 60)
    )
    return await identity.sign_up(body)


# Token answers are credentials: never cached, and never kept by Idempotency-Key storage
# (RFC 6749 section 5.1; the middleware skips answers marked no-store).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/auth/login", response_model=TokenPair, responses=problems(401, 422, 429))
async def log_in(
    body: LogIn, identity: Identity, platform: PlatformDep, request: Request, response: Response
) -> TokenPair:
    response.headers.update(NO_STORE)
    settings = platform.settings
    limiter = platform.rate_limiter
    ip = _client_ip(request)
    # Per account *and* IP: someone hammering a victim's email from elsewhere never locks the
    # victim out; from one IP, failures earn growing delays.
    account = f"{body.email.strip().lower()}|{ip}"
    await limiter.hit("login-ip", ip, Rate(settings.login_ip_rate_per_minute, 60))
    await limiter.hit("login-account", account, Rate(settings.login_rate_per_minute, 60))
    await limiter.wait_after_failures("login", account)
    try:
        pair = await identity.log_in(body.email, body.password)
    except InvalidCredentials:
        await limiter.failed("login", account, Delays(free=settings.login_failures_before_delay))
        raise
    await limiter.succeeded("login", account)
    return pair


@router.post("/auth/refresh", response_model=TokenPair, responses=problems(401, 422))
async def refresh(body: RefreshRequest, identity: Identity, response: Response) -> TokenPair:
    response.headers.update(NO_STORE)
    return await identity.refresh(body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(422))
async def log_out(body: RefreshRequest, identity: Identity) -> Response:
    await identity.log_out(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/session", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401))
async def open_session(principal: CurrentUser, request: Request, platform: PlatformDep) -> Response:
    """Put this request's access token in the ``haot_session`` cookie (HttpOnly, SameSite=Lax,
    Secure in production) for as long as the token lives, so that a browser's EventSource can
    open the live streams (it cannot send headers). Only streams accept the cookie."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    lifetime = principal.issued_at.timestamp() + platform.settings.access_token_ttl_seconds
    response = Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, int(lifetime - utcnow().timestamp())),
        **session_cookie_attributes(platform.settings),
    )
    return response


@router.delete("/auth/session", status_code=status.HTTP_204_NO_CONTENT)
async def close_session(platform: PlatformDep) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, **session_cookie_attributes(platform.settings))
    return response


@router.get("/users/me", response_model=UserRead, responses=problems(401))
async def read_me(principal: CurrentUser, identity: Identity) -> UserRead:
    return await identity.get(principal.user_id)


@router.patch("/users/me", response_model=UserRead, responses=problems(401, 422))
async def update_me(body: UserUpdate, principal: CurrentUser, identity: Identity) -> UserRead:
    return await identity.update_me(principal.user_id, body)


@router.put(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 422, 429),
)
async def change_password(
    body: PasswordChange, principal: CurrentUser, identity: Identity, platform: PlatformDep
) -> Response:
    """Rate-limited like a log-in: a stolen access token must not become a way to guess the
    current password."""
    settings, limiter = platform.settings, platform.rate_limiter
    user = str(principal.user_id)
    await limiter.hit("password-change", user, Rate(settings.password_change_rate_per_minute, 60))
    await limiter.wait_after_failures("password-change", user)
    try:
        await identity.change_password(principal.user_id, body)
    except InvalidCredentials:
        delays = Delays(free=settings.login_failures_before_delay)
        await limiter.failed("password-change", user, delays)
        raise
    await limiter.succeeded("password-change", user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/admin/users", response_model=Page[UserRead], responses=problems(401, 403, 422))
async def list_users(
    _: AdminOnly,
    identity: Identity,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role: Role | None = None,
    active: bool | None = None,
) -> Page[UserRead]:
    return await identity.list_users(q=q, role=role, active=active, paging=paging)


@router.get("/admin/users/{user_id}", response_model=UserRead, responses=problems(401, 403, 404))
async def read_user(user_id: str, _: AdminOnly, identity: Identity) -> UserRead:
    return await identity.get(path_id(user_id, UserNotFound))


@router.patch(
    "/admin/users/{user_id}", response_model=UserRead, responses=problems(401, 403, 404, 422)
)
async def update_user(
    user_id: str, body: AdminUserUpdate, _: AdminOnly, identity: Identity
) -> UserRead:
    return await identity.admin_update(path_id(user_id, UserNotFound), body)
