"""Direct routes: the few endpoints hit by flash crowds, answered before FastAPI's router.

FastAPI matches a request against every route in turn and solves a dependency tree per request;
for an endpoint whose whole job is one Redis round trip that overhead is most of the cost
(``make bench`` measured it). A direct route is matched by one regex per route of its method and
its handler gets the path parameters, the headers and (when it asks) the body, nothing more. It
still runs inside the
platform middleware (request id, access log, RED metrics under its template, Idempotency-Key), and
its errors become the same problem+json answers as anywhere else, through the app's own exception
handlers. Each direct route is also declared as an ordinary FastAPI route (OpenAPI, and the
fallback where this middleware is not installed) that calls the same function.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette._exception_handler import _lookup_exception_handler
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from haot.platform.errors import HaotError
from haot.platform.problems import haot_error_response

if TYPE_CHECKING:
    from haot.platform.container import Platform

M = TypeVar("M", bound=BaseModel)

# The route template a direct route answered under, for the metrics middleware (which would
# otherwise look it up among all routes).
ROUTE_TEMPLATE_KEY = "haot.route_template"


@dataclass(frozen=True, slots=True)
class DirectRequest:
    platform: Platform
    path_params: dict[str, str]
    headers: dict[bytes, bytes]
    query_string: bytes = b""
    body: bytes = b""

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.encode("latin-1"))
        return None if value is None else value.decode("latin-1")


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: bytes
    media_type: str = "application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


# A handler may decline (None): the request then goes on to FastAPI as if unmatched (a cached
# read that missed is answered by the full route).
DirectHandler = Callable[[DirectRequest], Awaitable[DirectResponse | None]]


@dataclass(frozen=True, slots=True)
class DirectRoute:
    method: str
    path: str  # full template, e.g. "/api/v1/coupon-events/{event_id}/claims"
    handler: DirectHandler
    # A handler that reads the body must not decline: the body is consumed by then.
    reads_body: bool = False
    # The route keeps its Idempotency-Key itself (the middleware passes it by).
    keeps_idempotency_key: bool = False


class DirectRoutesMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[DirectRoute]) -> None:
        self.app = app
        self._routes: dict[str, list[tuple[re.Pattern[str], DirectRoute]]] = {}
        for route in routes:
            regex, _, _ = compile_path(route.path)
            self._routes.setdefault(route.method, []).append((regex, route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (candidates := self._routes.get(scope["method"])):
            path = get_route_path(scope)
            for regex, route in candidates:
                match = regex.match(path)
                if match is not None:
                    scope[ROUTE_TEMPLATE_KEY] = route.path
                    await self._answer(route, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, route: DirectRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        app = scope["app"]
        body: bytes | None = b""
        if route.reads_body:
            body = await _read_body(receive)
        if body is None:
            return  # the client went away: nothing to run, nothing to answer
        request = DirectRequest(
            app.state.platform, params, dict(scope["headers"]), scope.get("query_string", b""), body
        )
        try:
            response = await route.handler(request)
        except HaotError as exc:  # the common refusals (409 sold out, 429), answered directly
            await haot_error_response(exc, scope["path"])(scope, receive, send)
            return
        except Exception as exc:
            # Starlette's own lookup (most specific class first), on the app's handlers.
            handler: Any = _lookup_exception_handler(app.exception_handlers, exc)
            if handler is None:
                raise
            await (await handler(Request(scope, receive), exc))(scope, receive, send)
            return
        if response is None:
            del scope[ROUTE_TEMPLATE_KEY]
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.media_type.encode("latin-1")),
                    (b"content-length", str(len(response.body)).encode("latin-1")),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (the body-limit middleware outside caps its size), or None on disconnect."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_body(model: type[M], body: bytes) -> M:
    """The JSON body as ``model``; invalid input raises the same validation error (422, with
    ``body`` leading each location) that FastAPI's own body parameters raise."""
    try:
        return model.model_validate_json(body or b"null")
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=body) from None
