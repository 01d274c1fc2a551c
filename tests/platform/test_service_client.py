"""Calls between contexts over real HTTP (ADR 0018): service credentials that a user's token can
never stand in for, retries only where a repeat is harmless, refusals raised as the caller's own
errors and never counted against the callee, a breaker that stops calling a failing callee, and
the request id carried along."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import structlog
from purgatory import AsyncCircuitBreakerFactory
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from haot.platform.auth import Role, TokenSigner
from haot.platform.errors import Conflict, Forbidden, HaotError, ServiceUnavailable, Unauthorized
from haot.platform.service_auth import ServiceTokens, verify_service_token
from haot.platform.service_client import ServiceClient
from tests.support.server import serving
from tests.support.services import free_port

SECRET = "service-secret-for-tests-0123456789abcdef"
USER_SECRET = "user-jwt-secret-for-tests-0123456789abcdef"


class SoldOut(Conflict):
    code = "sold_out"


@dataclass
class Callee:
    """A callee whose answers a test scripts: each path answers the next status of its list."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0

    async def answer(self, request: Request) -> Response:
        path = request.url.path
        self.calls[path] = self.calls.get(path, 0) + 1
        self.headers.append(dict(request.headers))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            caller = verify_service_token(SECRET, token, callee="lodging", callers=["reservation"])
        except HaotError as exc:
            return JSONResponse({"code": exc.code}, status_code=exc.status)
        if self.delay:
            await asyncio.sleep(self.delay)
        script = self.scripts.get(path, [200])
        status = script.pop(0) if len(script) > 1 else script[0]
        if status == 409:
            return JSONResponse({"code": "sold_out", "detail": "no room"}, status_code=409)
        if status == 422:
            return JSONResponse({"code": "invalid_stay", "detail": "past"}, status_code=422)
        if status >= 500:
            return Response(status_code=status)
        return JSONResponse({"caller": caller, "path": path})


@pytest.fixture
async def callee() -> AsyncIterator[tuple[str, Callee]]:
    state = Callee()
    app = Starlette(routes=[Route("/{rest:path}", state.answer, methods=["GET", "POST"])])
    async with serving(app) as base:
        yield base, state


def client(base: str, **options: object) -> ServiceClient:
    return ServiceClient(
        callee="lodging",
        base_url=base,
        tokens=ServiceTokens(SECRET, caller="reservation"),
        breakers=AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30),
        errors={"sold_out": SoldOut},
        **options,  # type: ignore[arg-type]
    )


def test_a_service_token_is_for_one_callee_and_its_named_callers() -> None:
    token = ServiceTokens(SECRET, caller="reservation").for_callee("lodging")
    assert verify_service_token(SECRET, token, callee="lodging", callers=["reservation"]) == (
        "reservation"
    )
    with pytest.raises(Unauthorized):  # meant for another context
        verify_service_token(SECRET, token, callee="payment", callers=["reservation"])
    with pytest.raises(Forbidden):  # a context this route does not serve
        verify_service_token(SECRET, token, callee="lodging", callers=["coupon"])
    with pytest.raises(Unauthorized):  # signed with another key
        verify_service_token("x" * 40, token, callee="lodging", callers=["reservation"])


def test_a_users_token_is_never_a_service_credential() -> None:
    signer = TokenSigner(USER_SECRET, issuer="haot", audience="haot-api", ttl_seconds=900)
    for secret in (USER_SECRET, SECRET):
        user = signer.issue(uuid.uuid4(), Role.ADMIN).token
        with pytest.raises(Unauthorized):
            verify_service_token(secret, user, callee="lodging", callers=["reservation"])


def test_tokens_are_reused_until_shortly_before_they_lapse() -> None:
    tokens = ServiceTokens(SECRET, caller="reservation", ttl_seconds=60)
    now = time.time()
    first = tokens.for_callee("lodging", now=now)
    assert tokens.for_callee("lodging", now=now + 44) == first
    assert tokens.for_callee("lodging", now=now + 46) != first
    lapsed = ServiceTokens(SECRET, caller="reservation", ttl_seconds=1).for_callee("lodging")
    time.sleep(2.1)
    with pytest.raises(Unauthorized):
        verify_service_token(SECRET, lapsed, callee="lodging", callers=["reservation"])


async def test_an_idempotent_call_is_retried_past_a_failing_answer(
    callee: tuple[str, Callee],
) -> None:
    base, state = callee
    state.scripts["/hold"] = [503, 502, 200]
    service = client(base)
    try:
        answer = await service.call("POST", "/hold", json={}, idempotent=True)
    finally:
        await service.aclose()
    assert answer == {"caller": "reservation", "path": "/hold"}
    assert state.calls["/hold"] == 3


async def test_a_call_that_may_not_be_repeated_is_sent_once(callee: tuple[str, Callee]) -> None:
    base, state = callee
    state.scripts["/charge"] = [503, 200]
    service = client(base)
    try:
        with pytest.raises(ServiceUnavailable):
            await service.call("POST", "/charge", json={}, idempotent=False)
    finally:
        await service.aclose()
    assert state.calls["/charge"] == 1


async def test_refusals_are_the_callers_own_errors_and_never_retried(
    callee: tuple[str, Callee],
) -> None:
    base, state = callee
    state.scripts["/full"] = [409]
    state.scripts["/past"] = [422]
    service = client(base)
    try:
        with pytest.raises(SoldOut, match="no room"):
            await service.call("POST", "/full", json={}, idempotent=True)
        with pytest.raises(HaotError) as unknown:
            await service.call("POST", "/past", json={}, idempotent=True)
        assert (unknown.value.status, unknown.value.code) == (422, "invalid_stay")
        # Refusals are the callee working: many of them do not open the breaker.
        for _ in range(8):
            with pytest.raises(SoldOut):
                await service.call("POST", "/full", json={}, idempotent=True)
        assert await service.call("GET", "/fine", idempotent=True) == {
            "caller": "reservation",
            "path": "/fine",
        }
    finally:
        await service.aclose()
    assert state.calls["/full"] == 9
    assert state.calls["/past"] == 1


async def test_the_breaker_stops_calling_a_failing_callee(callee: tuple[str, Callee]) -> None:
    base, state = callee
    state.scripts["/down"] = [500]
    service = client(base, attempts=1)
    try:
        for _ in range(5):
            with pytest.raises(ServiceUnavailable):
                await service.call("GET", "/down", idempotent=True)
        assert state.calls["/down"] == 5
        started = time.monotonic()
        for _ in range(20):  # open: answered at once, the callee left alone
            with pytest.raises(ServiceUnavailable):
                await service.call("GET", "/down", idempotent=True)
        assert time.monotonic() - started < 1
        assert state.calls["/down"] == 5
    finally:
        await service.aclose()


async def test_a_callee_that_is_not_there_or_too_slow_is_unavailable(
    callee: tuple[str, Callee],
) -> None:
    base, state = callee
    nobody = client(f"http://127.0.0.1:{free_port()}", attempts=2)
    slow = client(base, read_timeout=0.2, attempts=1)
    state.delay = 1.0
    try:
        with pytest.raises(ServiceUnavailable):
            await nobody.call("GET", "/any", idempotent=True)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await slow.call("GET", "/slow", idempotent=True)
        assert time.monotonic() - started < 0.9
    finally:
        await nobody.aclose()
        await slow.aclose()


async def test_the_request_id_and_trace_go_along(callee: tuple[str, Callee]) -> None:
    base, state = callee
    service = client(base)
    structlog.contextvars.bind_contextvars(
        request_id="req-123",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
    )
    try:
        await service.call("GET", "/traced", idempotent=True)
    finally:
        structlog.contextvars.clear_contextvars()
        await service.aclose()
    sent = state.headers[-1]
    assert sent["x-request-id"] == "req-123"
    # The caller's span is the callee's parent.
    assert sent["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_service_key_is_never_the_users_key() -> None:
    from haot.platform.settings import TEST_JWT_SECRET, Settings

    derived = Settings(_env_file=None, jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    assert derived.service_token_secret
    assert derived.service_token_secret != derived.jwt_secret
    again = Settings(_env_file=None, jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    assert again.service_token_secret == derived.service_token_secret  # every process agrees
    chosen = Settings(  # type: ignore[call-arg]
        _env_file=None, jwt_secret=TEST_JWT_SECRET, service_token_secret=SECRET
    )
    assert chosen.service_token_secret == SECRET


async def test_a_platform_calls_a_context_it_does_not_serve_at_its_configured_url(
    callee: tuple[str, Callee],
) -> None:
    from haot.platform.container import Platform
    from haot.platform.settings import Settings

    base, state = callee
    unset = Platform(
        Settings(_env_file=None, jwt_secret=USER_SECRET, service_token_secret=SECRET),  # type: ignore[call-arg]
        contexts=("reservation",),
    )
    with pytest.raises(RuntimeError, match="HAOT_LODGING_URL"):
        unset.service_client("lodging", caller="reservation", errors={})
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, jwt_secret=USER_SECRET, service_token_secret=SECRET, lodging_url=base + "/"
    )
    platform = Platform(settings, contexts=("reservation",))
    service = platform.service_client("lodging", caller="reservation", errors={"sold_out": SoldOut})
    state.scripts["/full"] = [409]
    try:
        assert await service.call("GET", "/ok", idempotent=True) == {
            "caller": "reservation",
            "path": "/ok",
        }
        with pytest.raises(SoldOut):
            await service.call("GET", "/full", idempotent=True)
    finally:
        await service.aclose()
