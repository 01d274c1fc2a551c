"""JSON logs (structlog, Loki-ready) and per-route RED metrics, bound to a request id and trace id.

The request middleware is also the last line for unexpected exceptions: it logs them (with the
request id) and answers a bare 500 problem carrying ``x-request-id``, so a failure can be found in
the logs and nothing escapes to the server (whose own traceback would not be a JSON line)."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.direct import ROUTE_TEMPLATE_KEY
from haot.platform.metrics import HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS
from haot.platform.problems import internal_error_response

_SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "secret",
        "api_secret",
        "webhook_secret",
        "jwt_secret",
    }
)
REDACTED = "[redacted]"


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in _SECRET_KEYS else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Secrets never reach a log line: by key (any case), also inside nested dicts and lists."""
    for key, value in event_dict.items():
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # No file argument: print to whatever sys.stdout is at the time of the call (a file given
        # here would be pinned for good, and cached loggers would keep writing to it).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )


_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


class _Ids:
    """Unique 32-hex-digit ids (W3C trace-id shaped) without a random draw per request: a random
    per-process prefix and a counter. ``uuid4`` reads the OS's random source, a system call on
    every request; a forked child draws a prefix of its own."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_ids = _Ids()


def _request_id(headers: dict[bytes, bytes]) -> str:
    """The client's ``x-request-id`` when it is 1-128 visible ASCII characters, else a new one."""
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    return given if _REQUEST_ID.fullmatch(given) else _ids.next()


def _trace_id(headers: dict[bytes, bytes]) -> str:
    # W3C traceparent: version-traceid-parentid-flags
    parent = headers.get(b"traceparent", b"").decode("latin-1")
    parts = parent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return _ids.next()


@dataclass(frozen=True, slots=True)
class _RouteInfo:
    template: str
    regex: re.Pattern[str]
    methods: frozenset[str] | None
    mount: bool = False

    def matches(self, path: str, method: str) -> bool:
        return bool(self.regex.match(path)) and (not self.methods or method in self.methods)


class RouteTemplates:
    """Full path templates of an app's routes: prefixes of ``include_router`` and of mounted apps
    included (the route object in the scope knows only its own path). Built once, when the first
    request comes, after every router has been included."""

    def __init__(self, app: Any) -> None:
        self._by_route: dict[int, list[_RouteInfo]] = {}
        self._all: list[_RouteInfo] = []
        for route, path in _flatten(getattr(app, "routes", [])):
            if isinstance(route, Mount):
                regex, template, _ = compile_path(path.rstrip("/") + "/{path:path}")
                info = _RouteInfo(template.removesuffix("/{path}"), regex, None, mount=True)
            else:
                regex, template, _ = compile_path(path)
                methods = getattr(route, "methods", None)
                info = _RouteInfo(template, regex, frozenset(methods) if methods else None)
            self._by_route.setdefault(id(route), []).append(info)
            self._all.append(info)
        self._mounts = [info for info in self._all if info.mount]

    def template(self, scope: Scope, path: str, status: int) -> str:
        """``path``: the request path as the app saw it on the way in (mounts change the scope)."""
        method = scope["method"]
        if (direct := scope.get(ROUTE_TEMPLATE_KEY)) is not None:
            return str(direct)
        route = scope.get("route")
        if route is not None:
            infos = self._by_route.get(id(route), [])
            if len(infos) == 1 and not infos[0].mount:
                return infos[0].template
            for info in infos:
                if info.matches(path, method) and not info.mount:
                    return info.template
        # Answers given before routing (idempotent replays, errors from middleware), routes of a
        # mounted app (their path is relative to the mount), 404s inside a mount. A 404 outside
        # any mount needs no second look: the router found nothing.
        candidates = self._mounts if status == 404 and route is None else self._all
        for info in candidates:
            if info.matches(path, method):
                if not info.mount:
                    return info.template
                inner = getattr(route, "path", None)
                return info.template + (inner if inner and route is not None else "/{path}")
        return "unmatched"


def _flatten(routes: Sequence[Any]) -> Iterator[tuple[Any, str]]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # a FastAPI whose app.routes are the routes themselves
        for route in routes:
            if getattr(route, "path", None):
                yield route, route.path
        return
    for context in iter_route_contexts(routes):
        if context.path:
            yield context.original_route, context.path


class RequestContextMiddleware:
    """Request id and trace id in every log line and response; RED metrics labelled by route
    template (``/api/v1/users/{user_id}``), never by raw path, so cardinality stays bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children, looked up once per label set instead of under a lock per request
        # (bounded as the labels are: route templates, methods, statuses).
        self._served = functools.cache(
            lambda method, template, status: HTTP_REQUESTS.labels(method, template, str(status))
        )
        self._timed = functools.cache(
            lambda method, template: HTTP_DURATION.labels(method, template)
        )
        self.log = structlog.get_logger("haot.access")
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = _request_id(headers)
        trace_id = _trace_id(headers)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace_id)
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        method = scope["method"]
        path = get_route_path(scope)
        if self._templates is None:
            self._templates = RouteTemplates(scope.get("app"))
        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            self.log.exception("unhandled_error", method=method, path=scope["path"])
            if response_started:
                raise  # too late for an answer: the server drops the connection
            status = 500
            await _error_answer(scope, receive)(scope, receive, send_wrapper)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            template = self._templates.template(scope, path, status)
            self._served(method, template, str(status)).inc()
            self._timed(method, template).observe(elapsed)
            fields = {
                "method": method,
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            if status >= 500:
                self.log.error("request", **fields)
            elif scope["path"] not in ("/metrics", "/healthz", "/readyz"):
                self.log.info("request", **fields)


def _error_answer(scope: Scope, receive: Receive) -> Response:
    """The 500 answer: the app's HTML error page for a browser on a page path (the app sets
    ``state.error_page``), else problem+json."""
    error_page = getattr(scope["app"].state, "error_page", None)
    if error_page is not None:
        page: Response | None = error_page(Request(scope, receive), 500)
        if page is not None:
            return page
    return internal_error_response(scope["path"])
