"""JSON logs (structlog, Loki-ready) and per-route RED metrics, bound to a request id and trace id.

Every log line is one JSON object on stdout: structlog's own loggers print directly (the request
path pays nothing more than before), and the standard library's records (uvicorn, SQLAlchemy,
aiokafka, httpx, alembic, anything that calls ``logging``) reach the root logger's one handler,
whose ``structlog.stdlib.ProcessorFormatter`` runs them through the same steps: the context
variables (``request_id``, ``trace_id``, ``span_id``, ``user_id``), level, timestamp, redaction.

The trace is W3C trace context (``00-<32 hex trace id>-<16 hex span id>-01``): a request takes
the trace id of its ``traceparent`` header or starts one, and gets a span id of its own; what it
writes to the outbox, and what it asks of PortOne or of another context, carries
``current_traceparent()``; a consumer applies each event under ``trace_bound`` (the event's trace,
a span of its own), so the trace id follows a booking across processes.

With traces on (``HAOT_OTEL_EXPORTER_OTLP_ENDPOINT``, ``haot.platform.tracing``), the same places
start OpenTelemetry spans and bind their ids instead; off, ``TRACING`` stays ``None`` and every
hook here runs what it ran before (the request path not even a lookup: the middleware decides
once, at its first request).

The request middleware is also the last line for unexpected exceptions: it logs them (with the
request id) and answers a bare 500 problem carrying ``x-request-id``, so a failure can be found in
the logs and nothing escapes to the server (whose own traceback would not be a JSON line)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.direct import ROUTE_TEMPLATE_KEY
from haot.platform.metrics import HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS
from haot.platform.problems import internal_error_response

if TYPE_CHECKING:
    from haot.platform.tracing import Tracing

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


# Loggers of libraries that are chatty below WARNING: SQLAlchemy logs every statement at INFO
# (and checks that once per connection, so an INFO root would slow every query), httpx every
# request, aiokafka every rebalance step.
_QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncio", "httpx", "httpcore", "aiokafka")
# uvicorn's loggers keep no handlers of their own: their records go to the root's.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def _level(name: str) -> int:
    return logging.getLevelNamesMapping().get(name.upper(), logging.INFO)


def _renderer(json: bool) -> Any:
    return structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()


def _drop_color_message(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # uvicorn passes its message again with ANSI colours as an ``extra``.
    event_dict.pop("color_message", None)
    return event_dict


def foreign_formatter(*, json: bool = True) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of standard-library records: the steps structlog's own lines go through
    (context variables, level, timestamp, redaction, exceptions), plus the logger's name and the
    record's ``extra`` fields, then the same renderer."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _renderer(json),
        ],
    )


class StdoutHandler(logging.Handler):
    """Writes each formatted record as one line to whatever ``sys.stdout`` is at the time, as
    structlog's ``PrintLogger`` does (a stream kept from construction would outlive a replaced
    ``sys.stdout``), in one write so that lines of two threads never interleave."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            stream = sys.stdout
            stream.write(line)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def log_handler(*, json: bool = True, level: int | str = logging.NOTSET) -> StdoutHandler:
    """The root logger's handler (also named by ``logging_config`` for uvicorn's dictConfig)."""
    handler = StdoutHandler(level=level if isinstance(level, int) else _level(level))
    handler.setFormatter(foreign_formatter(json=json))
    return handler


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """structlog for our own lines, and the root logger's one ``StdoutHandler`` for everything
    else; idempotent (every app and worker calls it, uvicorn may have installed the handler
    first)."""
    numeric = _level(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _renderer(json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No file argument: print to whatever sys.stdout is at the time of the call (a file given
        # here would be pinned for good, and cached loggers would keep writing to it).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdoutHandler)]:
        root.removeHandler(handler)
    root.addHandler(log_handler(json=json, level=numeric))
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def logging_config(level: str = "INFO", *, json: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for ``uvicorn.run(log_config=...)``: the root
    logger's JSON handler and uvicorn's loggers without handlers of their own, so that uvicorn's
    lines are JSON from its first one (before the app, which calls ``configure_logging``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "json": {"()": f"{__name__}.log_handler", "json": json, "level": _level(level)}
        },
        "root": {"handlers": ["json"], "level": _level(level)},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _UVICORN_LOGGERS},
    }


_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


class _Ids:
    """Unique 32-hex-digit ids (W3C trace-id shaped) and 16-hex-digit span ids without a random
    draw per request: a random per-process prefix and a counter. ``uuid4`` reads the OS's random
    source, a system call on every request; a forked child draws a prefix of its own."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._span_prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"

    def next_span(self) -> str:
        return f"{self._span_prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


_ids = _Ids()

# version-traceid-parentid-flags; an all-zero trace id or span id is invalid.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def new_trace_id() -> str:
    return _ids.next()


def new_span_id() -> str:
    return _ids.next_span()


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` value, or None if it is absent or malformed."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    return match.group(1) if match else None


def format_traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


# The traces of the request or task being served: set by ``tracing`` (per request, and by
# ``Platform.start`` for its background tasks) only while traces are on; None otherwise.
TRACING: ContextVar[Tracing | None] = ContextVar("haot_tracing", default=None)
_NO_SPAN: AbstractContextManager[None] = nullcontext()


def active_tracing() -> Tracing | None:
    """The traces of what is being served, None when they are off (or their platform stopped)."""
    tracing = TRACING.get()
    return tracing if tracing is not None and tracing.active else None


def client_span(name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[None]:
    """Around an outgoing call (another context, PortOne): with traces on, a CLIENT span whose
    ids are bound while the call runs, so the ``traceparent`` it sends names it; else nothing."""
    tracing = active_tracing()
    return _NO_SPAN if tracing is None else tracing.client_span(name, attributes)


def record_response_status(status: int) -> None:
    """The status an outgoing call was answered with, on its CLIENT span (traces on only)."""
    if (tracing := active_tracing()) is not None:
        tracing.record_response_status(status)


def current_traceparent() -> str | None:
    """The trace context of the request or event being handled (the trace id and this process's
    span), as a ``traceparent`` value; None outside of one."""
    if (tracing := active_tracing()) is not None and (traced := tracing.current_traceparent()):
        return traced  # the current span's, with its sampled flag
    context = structlog.contextvars.get_contextvars()
    trace_id = context.get("trace_id")
    if not trace_id:
        return None
    value = format_traceparent(trace_id, context.get("span_id") or new_span_id())
    # Only well-formed: it is sent on and stored (a 55-character column).
    return value if _TRACEPARENT.fullmatch(value) else None


@contextlib.contextmanager
def trace_bound(
    traceparent: str | None,
    *,
    name: str = "process event",
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Binds, while the block runs, the trace id of ``traceparent`` (a new one if it has none)
    and a new span id into the log context; restores what was bound before. Yields the trace
    id. With traces on, that span is a CONSUMER span ``name``, child of ``traceparent``."""
    if (tracing := active_tracing()) is not None:
        with tracing.consumer_span(name, traceparent, attributes) as traced_id:
            yield traced_id
        return
    trace_id = trace_id_of(traceparent) or new_trace_id()
    with structlog.contextvars.bound_contextvars(trace_id=trace_id, span_id=new_span_id()):
        yield trace_id


def _request_id(headers: dict[bytes, bytes]) -> str:
    """The client's ``x-request-id`` when it is 1-128 visible ASCII characters, else a new one."""
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    return given if _REQUEST_ID.fullmatch(given) else _ids.next()


def _trace_id(headers: dict[bytes, bytes]) -> str:
    parent = headers.get(b"traceparent")
    given = trace_id_of(parent.decode("latin-1")) if parent is not None else None
    return given or _ids.next()


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
    """Request id, trace id and a span id of the request's own in every log line (the user id too,
    once ``authenticate`` knows it), the request id in every response; RED metrics labelled by route
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
        structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=trace_id, span_id=_ids.next_span()
        )
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
            self.app = _with_server_spans(self.app, scope.get("app"), self._templates)
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


def _with_server_spans(app: ASGIApp, owner: Any, templates: RouteTemplates) -> ASGIApp:
    """``app`` behind a SERVER span per request when the platform of ``owner`` (the app whose
    lifespan built it) traces; ``app`` itself otherwise, so that a process without traces runs
    the request path it ran before (decided once, at the first request: the platform exists
    only once the lifespan has started)."""
    platform = getattr(getattr(owner, "state", None), "platform", None)
    if getattr(platform, "tracing", None) is None:
        return app
    from haot.platform.tracing import ServerSpans

    return ServerSpans(app, owner, templates)


def _error_answer(scope: Scope, receive: Receive) -> Response:
    """The 500 answer: the app's HTML error page for a browser on a page path (the app sets
    ``state.error_page``), else problem+json."""
    error_page = getattr(scope["app"].state, "error_page", None)
    if error_page is not None:
        page: Response | None = error_page(Request(scope, receive), 500)
        if page is not None:
            return page
    return internal_error_response(scope["path"])
