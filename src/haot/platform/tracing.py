"""OpenTelemetry traces, exported over OTLP/HTTP while ``HAOT_OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Off (the default), nothing here runs and this module is never imported, nor are the SDK's
traces, the exporter and the instrumentation: the request middleware runs the code it ran
before traces existed, and the outgoing calls, the outbox and the consumers look up a context
variable (``observability.TRACING``) that stays ``None``.

On, the log context stays the one source of the ids. Every place that already gave a request or
an event a span of its own (``RequestContextMiddleware``, ``trace_bound``) starts a real span
instead, with the parent the W3C ``traceparent`` it was given, and binds *that span's* trace id
and span id into structlog's context variables. So a log line's ``trace_id``/``span_id`` are the
ids of the span it was written under (Grafana joins them), and ``current_traceparent()``, which
the outbox, PortOne and the calls between contexts already send on, names that span. The spans:

- SERVER, one per HTTP request (``ServerSpans``, installed once by the request middleware):
  named ``METHOD /route/{template}``, a child of the incoming ``traceparent``, HTTP attributes,
  the answer's status, error on 5xx or an exception. Not the probes and scrapes (``/healthz``,
  ``/readyz``, ``/metrics``), which write no log line either.
- CLIENT, one per call to another context (each attempt) and per call to PortOne: its ids are
  bound while the call runs, so the ``traceparent`` sent is the CLIENT span's and the callee's
  SERVER span is its child.
- PRODUCER, one per event written to the outbox (the send of a transactional outbox): a child
  of the span that made the event; the outbox row (and the Kafka header) carries the PRODUCER
  span, so the consumer's span is its child.
- CONSUMER, one per event applied (``trace_bound``): a child of the event's producer.
- CLIENT, one per database statement (SQLAlchemy's instrumentation on this platform's engines),
  under the span current when it runs; none outside of one of the spans above (the relay's
  polling would otherwise be a trace twice a second).

The provider belongs to the platform, never to OpenTelemetry's process-wide global (which can be
set once only): tracers come from it, and ``TRACING`` (a context variable) says which platform's
tracing the request or task being served uses: set per request by ``ServerSpans``, and by
``Platform.start`` for the background tasks it spawns. Spans leave through a
``BatchSpanProcessor`` thread: a collector that is slow or down costs a request nothing (the
batch is dropped after the exporter's retries), and ``Platform.stop`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette._utils import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.observability import TRACING, RouteTemplates, format_traceparent
from haot.platform.settings import CONTEXTS, Settings

log = structlog.get_logger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACES_PATH = "/v1/traces"
# Probes and scrapes, every few seconds from every prober: no span, as they write no log line.
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def traces_endpoint(base: str) -> str:
    """Where spans are posted: ``<base>/v1/traces`` (a base that already ends so is kept)."""
    base = base.strip().rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


def service_name_for(contexts: tuple[str, ...]) -> str:
    """``haot`` for a process serving several contexts (the all-in-one), ``haot-<context>`` for
    one (``haot serve --context lodging`` and its worker), ``haot-web`` for the pages alone."""
    if not contexts:
        return "haot-web"
    if len(contexts) == 1:
        return f"haot-{contexts[0]}"
    return "haot"


def _version() -> str:
    try:
        return importlib.metadata.version("haot")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


def _hex_ids(span_context: SpanContext) -> tuple[str, str]:
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def _traceparent_of(span_context: SpanContext) -> str:
    # The sampled flag travels: a caller's "not sampled" holds for every process after it.
    trace_id, span_id = _hex_ids(span_context)
    return f"00-{trace_id}-{span_id}-{int(span_context.trace_flags):02x}"


class Tracing:
    """One process's (one platform's) tracer provider, its exporter and the span helpers the
    hooks in ``observability``, ``service_client``, ``outbox`` and ``portone`` call."""

    def __init__(
        self,
        settings: Settings,
        *,
        contexts: tuple[str, ...] = CONTEXTS,
        exporter: SpanExporter | None = None,
    ) -> None:
        """``exporter`` replaces the OTLP/HTTP exporter (a test's in-memory one)."""
        self.provider = TracerProvider(
            resource=_resource(settings, contexts),
            # None: the SDK's choice from OTEL_TRACES_SAMPLER (by default, every trace).
            sampler=(
                ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_ratio))
                if settings.otel_traces_sampler_ratio is not None
                else None
            ),
            # The platform shuts it down when it stops; an exit hook per provider would keep
            # every provider a test session made alive until the end.
            shutdown_on_exit=False,
        )
        self.tracer = self.provider.get_tracer("haot", _version())
        # OTEL_SDK_DISABLED=true: the SDK hands out a tracer that records nothing and has no ids.
        self.enabled = not isinstance(self.tracer, trace.NoOpTracer)
        self._exporter: SpanExporter | None = None
        if self.enabled:
            self._exporter = exporter or OTLPSpanExporter(
                endpoint=traces_endpoint(settings.otel_exporter_otlp_endpoint)
            )
            self.provider.add_span_processor(BatchSpanProcessor(self._exporter))
        self.active = self.enabled
        # How long ``shutdown`` waits for the last spans to leave before giving them up.
        self.shutdown_grace_seconds = 5.0
        self._instrumented: set[int] = set()

    @classmethod
    def from_settings(cls, settings: Settings, *, contexts: tuple[str, ...]) -> Tracing | None:
        """The traces of a process serving ``contexts``; None if the SDK is disabled
        (``OTEL_SDK_DISABLED``), so that the process runs as with traces off."""
        tracing = cls(settings, contexts=contexts)
        if not tracing.enabled:
            log.warning("traces_off", reason="OTEL_SDK_DISABLED is set")
            return None
        return tracing

    # -- lifecycle ------------------------------------------------------------------------------

    def activate(self, engines: Iterable[AsyncEngine] = ()) -> None:
        """Trace what runs in the caller's task and the tasks it spawns from now on (relays,
        consumers, jobs); database statements on ``engines`` become spans."""
        TRACING.set(self)
        for engine in engines:
            if id(engine.sync_engine) in self._instrumented:
                continue
            self._instrumented.add(id(engine.sync_engine))
            # Per engine, with this provider's tracer: SQLAlchemyInstrumentor().instrument()
            # would patch create_engine process-wide and keep the first provider it was given.
            # (The instrumentation package has no type hints.)
            EngineTracer(  # type: ignore[no-untyped-call]
                _ChildSpansOnly(
                    self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
                ),
                engine.sync_engine,
                NoOpMeter("haot").create_up_down_counter("db.client.connections.usage"),
            )

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export every ended span now (blocking): tests call it before they look."""
        return self.provider.force_flush(timeout_millis)

    async def shutdown(self) -> None:
        """Flush what is left and stop the exporter's thread, off the event loop. A collector
        that refuses or does not answer would hold the stop for the exporter's retries (up to
        its timeout, 10 s by default): after ``shutdown_grace_seconds`` the exporter is stopped,
        which ends its retries, and the spans still queued are given up."""
        self.active = False
        flushing = asyncio.ensure_future(asyncio.to_thread(self.provider.shutdown))
        done, _ = await asyncio.wait({flushing}, timeout=self.shutdown_grace_seconds)
        if not done and self._exporter is not None:
            log.warning("traces_not_flushed", within_seconds=self.shutdown_grace_seconds)
            self._exporter.shutdown()
        await flushing

    # -- spans ----------------------------------------------------------------------------------

    def current_traceparent(self) -> str | None:
        """The current span as a ``traceparent`` value (with its sampled flag), None if none."""
        span_context = trace.get_current_span().get_span_context()
        return _traceparent_of(span_context) if span_context.is_valid else None

    @contextlib.contextmanager
    def consumer_span(
        self, name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[str]:
        """A CONSUMER span, child of ``traceparent`` (a new trace without one), current and
        bound into the log context while the block runs; yields its trace id."""
        span = self.tracer.start_span(
            name, context=_parent(traceparent), kind=SpanKind.CONSUMER, attributes=attributes
        )
        with _current(span):
            yield _hex_ids(span.get_span_context())[0]

    @contextlib.contextmanager
    def client_span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        """A CLIENT span, child of the current span, current and bound into the log context
        while the call runs (so the ``traceparent`` it sends names it)."""
        span = self.tracer.start_span(
            name, context=_current_parent(), kind=SpanKind.CLIENT, attributes=attributes
        )
        with _current(span):
            yield

    def record_response_status(self, status: int) -> None:
        """The answer to the current CLIENT span's call: 4xx and 5xx are errors of a client."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(StatusCode.ERROR)

    def producer_span(
        self, name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None
    ) -> str:
        """Records a PRODUCER span (an event written to the outbox), child of ``traceparent``,
        the span that made the event; returns the span's own ``traceparent``, which the event
        carries to its consumers."""
        span = self.tracer.start_span(
            name, context=_parent(traceparent), kind=SpanKind.PRODUCER, attributes=attributes
        )
        span.end()
        return _traceparent_of(span.get_span_context())


class _ChildSpansOnly:
    """The tracer given to the database instrumentation: a statement is a span only under one
    of ours (a request, an event applied, a call). Outside of them (the relay polling its outbox
    twice a second, a scrape's readiness check, the revocation replica) each statement would
    be a trace of its own, burying the traces worth reading."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self, name: str, context: otel_context.Context | None = None, **options: Any
    ) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, **options)


def _resource(settings: Settings, contexts: tuple[str, ...]) -> Resource:
    attributes: dict[str, str] = {
        "service.version": _version(),
        "deployment.environment.name": settings.env,
        # The attribute's name before semantic conventions 1.27, which many dashboards still read.
        "deployment.environment": settings.env,
    }
    # HAOT_OTEL_SERVICE_NAME, else the SDK's OTEL_SERVICE_NAME (or service.name in
    # OTEL_RESOURCE_ATTRIBUTES), else the name of what this process serves.
    if settings.otel_service_name:
        attributes["service.name"] = settings.otel_service_name
    elif "service.name" not in OTELResourceDetector().detect().attributes:
        attributes["service.name"] = service_name_for(contexts)
    return Resource.create(attributes)


def _parent(traceparent: str | None) -> otel_context.Context:
    """The context whose span is ``traceparent``'s; an empty one (a new trace) without a valid
    one, never the current context: a request or an event starts from what it was given."""
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({"traceparent": traceparent}, context=otel_context.Context())


def _current_parent() -> otel_context.Context:
    current = otel_context.get_current()
    if trace.get_current_span(current).get_span_context().is_valid:
        return current
    # Ids bound in the log context without a span (none of ours binds them so while traces are
    # on, but a caller may): the new span still joins that trace.
    bound = structlog.contextvars.get_contextvars()
    trace_id, span_id = bound.get("trace_id"), bound.get("span_id")
    if trace_id and span_id:
        return _parent(format_traceparent(str(trace_id), str(span_id)))
    return otel_context.Context()


@contextlib.contextmanager
def _current(span: Span) -> Iterator[None]:
    """``span`` current (OpenTelemetry's context: what the database spans hang under) and its
    ids in the log context while the block runs; an exception marks it an error; ended after."""
    trace_id, span_id = _hex_ids(span.get_span_context())
    with (
        trace.use_span(span, end_on_exit=True),
        structlog.contextvars.bound_contextvars(trace_id=trace_id, span_id=span_id),
    ):
        yield


class ServerSpans:
    """A SERVER span around each HTTP request, inside ``RequestContextMiddleware`` (which puts
    this in front of the app at its first request when the platform traces). Its ids replace
    the ones the middleware bound and stay bound after it returns, so that the middleware's
    ``request`` log line, written last, carries the span's ids."""

    def __init__(self, app: ASGIApp, owner: Any, templates: RouteTemplates) -> None:
        self.app = app
        self._owner = owner
        self._templates = templates

    def _tracing(self) -> Tracing | None:
        # The platform of the app's current lifespan (a new one at each start).
        platform = getattr(self._owner.state, "platform", None)
        tracing: Tracing | None = getattr(platform, "tracing", None)
        return tracing if tracing is not None and tracing.active else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracing = self._tracing() if scope["type"] == "http" else None
        if tracing is None or scope["path"] in _UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = get_route_path(scope)
        headers = dict(scope["headers"])
        incoming = headers.get(b"traceparent")
        span = tracing.tracer.start_span(
            method,
            context=_parent(incoming.decode("latin-1") if incoming else None),
            kind=SpanKind.SERVER,
            attributes=_request_attributes(scope, method, headers),
        )
        trace_id, span_id = _hex_ids(span.get_span_context())
        structlog.contextvars.bind_contextvars(trace_id=trace_id, span_id=span_id)
        status = 500  # what the middleware answers when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = TRACING.set(tracing)
        raised = False
        try:
            # Current while the app runs; an escaping exception is recorded and marks an error.
            with trace.use_span(span):
                await self.app(scope, receive, send_status)
        except Exception:
            raised = True
            raise
        finally:
            TRACING.reset(token)
            self._finish(span, scope, method, path, status, raised=raised)

    def _finish(
        self, span: Span, scope: Scope, method: str, path: str, status: int, *, raised: bool
    ) -> None:
        attributes: dict[str, Any] = {"http.response.status_code": status}
        template = self._templates.template(scope, path, status)
        if template != "unmatched":
            span.update_name(f"{method} {template}")
            attributes["http.route"] = template
        bound = structlog.contextvars.get_contextvars()
        if request_id := bound.get("request_id"):
            attributes["haot.request_id"] = str(request_id)
        if user_id := bound.get("user_id"):
            attributes["enduser.id"] = str(user_id)
        span.set_attributes(attributes)  # at once: each call takes the span's lock
        if status >= 500 and not raised:  # a server's 4xx is the client's error, not its own
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def _request_attributes(scope: Scope, method: str, headers: dict[bytes, bytes]) -> dict[str, Any]:
    # OpenTelemetry's HTTP semantic conventions (stable). No query string: it may carry tokens.
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    if agent := headers.get(b"user-agent"):
        attributes["user_agent.original"] = agent.decode("latin-1")
    return attributes
