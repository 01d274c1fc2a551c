"""The pages' way to the product: the public HTTP API, called as any client calls it (ADR 0017).

In the all-in-one app the call goes in-process to the app itself (an ASGI transport, no socket),
carrying the visitor's address as the client's so the API's per-IP limits still see the visitor;
with ``HAOT_WEB_API_URL`` set it goes to that address (the gateway of a split deployment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request

API = "/api/v1"


@dataclass
class ApiProblem(Exception):
    """A problem+json answer of the API: what the page shows (field errors by field name)."""

    status: int
    code: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    def field_errors(self) -> dict[str, str]:
        return {
            str(error["loc"][-1]): str(error.get("message", ""))
            for error in self.errors
            if error.get("loc")
        }


class Api:
    def __init__(self, request: Request, *, token: str | None = None) -> None:
        base_url: str = request.app.state.platform.settings.web_api_url
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id := request.headers.get("x-request-id"):
            headers["X-Request-ID"] = request_id
        visitor = request.client.host if request.client else "127.0.0.1"
        self._shared = bool(base_url)
        if base_url:
            # The API's per-IP limits must see the visitor, not this process: the gateway
            # appends its peer (us) and the services trust it to name the hop before.
            headers["X-Forwarded-For"] = visitor
            self._client = _gateway_client(request, base_url)
        else:
            transport = httpx.ASGITransport(app=request.app, client=(visitor, 0))
            self._client = httpx.AsyncClient(transport=transport, base_url="http://haot.internal")
        self._headers = headers

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_: object) -> None:
        if not self._shared:
            await self._client.aclose()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return _answer(
            await self._client.get(API + path, params=_present(params), headers=self._headers)
        )

    async def post(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return _answer(
            await self._client.post(
                API + path, json=body or {}, headers={**self._headers, **(headers or {})}
            )
        )

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        return _answer(await self._client.put(API + path, json=body, headers=self._headers))

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        return _answer(await self._client.patch(API + path, json=body, headers=self._headers))

    async def delete(self, path: str) -> Any:
        return _answer(await self._client.delete(API + path, headers=self._headers))


def _gateway_client(request: Request, base_url: str) -> httpx.AsyncClient:
    """One pooled client per process for the gateway (kept-alive connections), closed when the
    app stops."""
    state = request.app.state
    client: httpx.AsyncClient | None = getattr(state, "gateway_client", None)
    if client is None:
        client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(10.0, connect=2.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        state.gateway_client = client
        state.platform.on_stop(client.aclose)
    return client


def _present(params: dict[str, Any] | None) -> dict[str, Any]:
    """Query parameters without the empty ones (an empty form field means "not given")."""
    return {k: v for k, v in (params or {}).items() if v not in (None, "")}


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        raise ApiProblem(
            status=response.status_code,
            code=str(problem.get("code", "error")),
            detail=str(problem.get("detail") or problem.get("title") or ""),
            errors=list(problem.get("errors") or []),
        )
    return response.json() if response.content else None
