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

from haot.web.i18n import language_of
from haot.web.refusals import field_message, refusal_message

API = "/api/v1"


@dataclass
class ApiProblem(Exception):
    """A problem+json answer of the API: what the page shows (field errors by field name), in
    the visitor's ``language`` (``refusals``: the API words its refusals in English).

    ``detail`` and each error's ``message`` stay as the API words them, for the pages to read
    (which field a message names); ``message()`` and ``message_of()`` are what they show."""

    status: int
    code: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    language: str = "en"

    def field_errors(self) -> dict[str, str]:
        """The errors by the field each names (the last part of its location), as shown."""
        return {
            str(error["loc"][-1]): self.message_of(error)
            for error in self.errors
            if error.get("loc")
        }

    def message_of(self, error: dict[str, Any]) -> str:
        """One of the errors as the page shows it (by its type and limits)."""
        return field_message(error, self.language)

    def message(self) -> str:
        """The refusal as the page shows it when no field is named (by its code)."""
        return refusal_message(self.code, self.detail, self.language)


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
        self._language = language_of(request)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_: object) -> None:
        if not self._shared:
            await self._client.aclose()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._answer(
            await self._client.get(API + path, params=_present(params), headers=self._headers)
        )

    async def post(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self._answer(
            await self._client.post(
                API + path, json=body or {}, headers={**self._headers, **(headers or {})}
            )
        )

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._answer(await self._client.put(API + path, json=body, headers=self._headers))

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._answer(await self._client.patch(API + path, json=body, headers=self._headers))

    async def delete(self, path: str) -> Any:
        return self._answer(await self._client.delete(API + path, headers=self._headers))

    def _answer(self, response: httpx.Response) -> Any:
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
                language=self._language,
            )
        return response.json() if response.content else None


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
