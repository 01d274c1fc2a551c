"""HTTP calls from one context to another in a split deployment (ADR 0018).

One ``ServiceClient`` per callee: short timeouts; retries with jittered backoff (stamina) only for
calls the caller marks idempotent, on connection errors, timeouts and 502/503/504; a circuit
breaker (purgatory) that answers ``ServiceUnavailable`` at once while the callee is failing. A
refusal (4xx problem+json) is neither retried nor counted against the callee: it is raised as the
exception the in-process client raises for its code, so a caller cannot tell the two apart. The
request id and trace context of the request being served go with every call; with traces on,
each attempt is a CLIENT span, and the callee's request span is its child.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import stamina
import structlog
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from haot.platform.errors import HaotError, ServiceUnavailable
from haot.platform.observability import client_span, current_traceparent, record_response_status
from haot.platform.service_auth import ServiceTokens

log = structlog.get_logger(__name__)
RETRIED_STATUSES = frozenset({502, 503, 504})


class CalleeFailed(Exception):
    """The callee did not answer usefully (down, timed out, 5xx): retried where allowed,
    counted by the breaker, and ``ServiceUnavailable`` to whoever asked."""


def refusal_type(status: int, code: str) -> type[HaotError]:
    """An error type for a refusal whose code the client does not know: passed on as it came
    (same status, same code)."""
    return type("Refused", (HaotError,), {"status": status, "code": code, "title": code})


class ServiceClient:
    def __init__(
        self,
        *,
        callee: str,
        base_url: str,
        tokens: ServiceTokens,
        breakers: AsyncCircuitBreakerFactory,
        errors: Mapping[str, type[HaotError]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        attempts: int = 3,
        retry_budget_seconds: float = 2.0,
    ) -> None:
        self._callee = callee
        self._tokens = tokens
        self._breakers = breakers
        self._errors = dict(errors or {})
        self._attempts = attempts
        self._budget = retry_budget_seconds
        self._base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, *, json: Any = None, idempotent: bool) -> Any:
        """The callee's JSON answer. ``idempotent``: the callee applies a repeat once (a read, or
        a write keyed by what it is for), so a call that may or may not have arrived can be sent
        again."""
        try:
            # A refusal is the callee working: it does not count against it.
            breaker = await self._breakers.get_breaker(self._callee, exclude=[HaotError])
            async with breaker:
                if not idempotent:
                    return await self._once(method, path, json)
                async for attempt in stamina.retry_context(
                    on=CalleeFailed,
                    attempts=self._attempts,
                    timeout=self._budget,
                    wait_initial=0.05,
                    wait_max=0.5,
                ):
                    with attempt:
                        return await self._once(method, path, json)
        except OpenedState:
            raise ServiceUnavailable(f"{self._callee} is unavailable") from None
        except CalleeFailed as exc:
            raise ServiceUnavailable(f"{self._callee} is unavailable") from exc
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _once(self, method: str, path: str, json: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._tokens.for_callee(self._callee)}"}
        context = structlog.contextvars.get_contextvars()
        if request_id := context.get("request_id"):
            headers["X-Request-ID"] = str(request_id)
        with client_span(f"{method} {self._callee}", self._span_attributes(method, path)):
            if traceparent := current_traceparent():  # the caller's span is the callee's parent
                headers["traceparent"] = traceparent
            try:
                response = await self._http.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, timed out
                log.warning("service_call_failed", callee=self._callee, path=path, error=repr(exc))
                raise CalleeFailed(repr(exc)) from exc
            record_response_status(response.status_code)
        if response.status_code in RETRIED_STATUSES or response.status_code >= 500:
            raise CalleeFailed(f"{self._callee} answered {response.status_code}")
        if response.status_code >= 400:
            raise self._refusal(response)
        return response.json() if response.content else None

    def _span_attributes(self, method: str, path: str) -> dict[str, str]:
        return {
            "http.request.method": method,
            "url.full": self._base_url + path,
            "peer.service": self._callee,
        }

    def _refusal(self, response: httpx.Response) -> HaotError:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        code = str(problem.get("code", "error"))
        detail = str(problem.get("detail") or problem.get("title") or code)
        known = self._errors.get(code)
        if known is not None:
            return known(detail)
        return refusal_type(response.status_code, code)(detail)
