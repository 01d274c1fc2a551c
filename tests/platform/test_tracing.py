"""OpenTelemetry traces (issue 16, item 5): with ``HAOT_OTEL_EXPORTER_OTLP_ENDPOINT`` set, the app
exports spans over OTLP/HTTP to a real socket, here a small collector that decodes what arrives
with OpenTelemetry's own protobuf messages. A request is a SERVER span of its caller's trace whose
ids are the ones its log lines carry; a call to another context is a CLIENT span, parent of the
span the callee records; an event written and consumed keeps the trace (PRODUCER, then CONSUMER);
a 5xx is an error; a collector that is down costs a request nothing. Off, OpenTelemetry's SDK is
never imported and the request middleware keeps the app it was given."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from purgatory import AsyncCircuitBreakerFactory

from haot.platform.inbox import Consumer
from haot.platform.observability import TRACING, RequestContextMiddleware, trace_bound
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import TEST_JWT_SECRET, Settings
from haot.platform.tracing import ServerSpans, Tracing, service_name_for, traces_endpoint
from tests.payment.test_portone_trace import PortOne, gateway
from tests.platform.conftest import bearer, build_probe_app, one_backend, serve
from tests.platform.test_observability import json_lines
from tests.platform.test_trace_propagation import (
    CALLER_SPAN,
    TRACE_ID,
    TRACEPARENT,
    TracedAnswered,
    TracedAsked,
    answering,
    asking,
    outbox_rows,
)
from tests.support.server import serving
from tests.support.services import free_port

SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
PRODUCER, CONSUMER = Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER
ERROR, UNSET = Status.STATUS_CODE_ERROR, Status.STATUS_CODE_UNSET


@dataclass(frozen=True)
class Exported:
    """One span as the collector received it (ids as the lowercase hex of logs and headers)."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: int
    events: tuple[str, ...]


def _value(value: AnyValue) -> Any:
    field = value.WhichOneof("value")
    return getattr(value, field) if field else None


class Collector:
    """An OTLP/HTTP traces endpoint (``POST /v1/traces``, protobuf) on a loopback port, in a
    thread of its own: the exporter posts from the processor's thread, or from the event loop's
    when a test calls ``force_flush``, and must find it answering either way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Exported] = []
        self.posts = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                collector.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # stdout is the app's JSON lines, read by the tests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Exported(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status=span.status.code,
                            events=tuple(event.name for event in span.events),
                        )
                    )
        with self._lock:
            self.posts += 1
            self._spans.extend(received)

    def spans(self) -> list[Exported]:
        with self._lock:
            return list(self._spans)

    def one(self, name: str) -> Exported:
        found = [span for span in self.spans() if span.name == name]
        assert len(found) == 1, (name, [span.name for span in self.spans()])
        return found[0]


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


def traced(settings: Settings, collector: Collector, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"otel_exporter_otlp_endpoint": collector.url, "log_level": "INFO", **overrides}
    )


def request_middleware(app: FastAPI) -> RequestContextMiddleware:
    node: Any = app.middleware_stack
    while not isinstance(node, RequestContextMiddleware):
        node = node.app
    return node


@one_backend
async def test_a_request_is_a_server_span_of_its_callers_trace_named_by_its_log_lines(
    settings: Settings, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_probe_app(traced(settings, collector))
    async with serve(app) as client:
        response = await client.get(
            "/probe/things/t-1", headers={"traceparent": TRACEPARENT, "x-request-id": "traced-1"}
        )
        assert response.status_code == 200, response.text
        assert isinstance(request_middleware(app).app, ServerSpans)
        assert app.state.platform.tracing.force_flush()

    server = collector.one("GET /probe/things/{thing_id}")
    assert server.kind == SERVER
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, CALLER_SPAN)
    assert server.span_id != CALLER_SPAN
    assert server.service == "haot"
    assert server.status == UNSET
    assert server.attributes["http.route"] == "/probe/things/{thing_id}"
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["url.path"] == "/probe/things/t-1"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["haot.request_id"] == "traced-1"
    # The log line of the request names the span: Grafana joins the two by these ids.
    (line,) = [
        r
        for r in json_lines(capsys.readouterr().out)
        if r.get("request_id") == "traced-1" and r["event"] == "request"
    ]
    assert (line["trace_id"], line["span_id"]) == (server.trace_id, server.span_id)


@one_backend
async def test_a_request_without_a_caller_starts_a_trace_with_its_statements_and_nothing_else(
    settings: Settings, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_probe_app(traced(settings, collector))
    async with serve(app) as client:
        response = await client.get(
            "/probe/sql",
            params={"statement": "cast", "value": "7"},
            headers={"x-request-id": "traced-sql"},
        )
        assert response.json() == {"result": "7"}
        # Probes and scrapes (their readiness checks query the database) are no traces.
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(probe)).status_code == 200
        await asyncio.sleep(0.2)  # the relay polls its outbox meanwhile: no trace either
        assert app.state.platform.tracing.force_flush()

    server = collector.one("GET /probe/sql")
    assert server.parent_span_id == ""  # a trace of its own
    assert {s.trace_id for s in collector.spans()} == {server.trace_id}
    statements = [s for s in collector.spans() if s.parent_span_id == server.span_id]
    assert statements, collector.spans()
    assert all(s.kind == CLIENT and s.trace_id == server.trace_id for s in statements)
    assert any("CAST" in str(s.attributes.get("db.statement")) for s in statements), statements
    (line,) = [
        r
        for r in json_lines(capsys.readouterr().out)
        if r.get("request_id") == "traced-sql" and r["event"] == "request"
    ]
    assert (line["trace_id"], line["span_id"]) == (server.trace_id, server.span_id)


@one_backend
async def test_a_5xx_answer_marks_the_server_span_an_error_and_a_refusal_does_not(
    settings: Settings, collector: Collector
) -> None:
    app = build_probe_app(traced(settings, collector))
    async with serve(app) as client:
        assert (await client.get("/probe/crash")).status_code == 500
        assert (await client.get("/probe/teapot")).status_code == 418
        app.state.probe.fail_next.append("unavailable")
        assert (await client.post("/probe/items", json={"name": "x"})).status_code == 503
        assert app.state.platform.tracing.force_flush()

    crash = collector.one("GET /probe/crash")
    assert (crash.status, crash.attributes["http.response.status_code"]) == (ERROR, 500)
    unavailable = collector.one("POST /probe/items")
    assert (unavailable.status, unavailable.attributes["http.response.status_code"]) == (ERROR, 503)
    teapot = collector.one("GET /probe/teapot")
    assert (teapot.status, teapot.attributes["http.response.status_code"]) == (UNSET, 418)


calling = APIRouter(prefix="/probe/traced")


@calling.get("/call")
async def call_the_callee(request: Request) -> Any:
    settings: Settings = request.app.state.platform.settings
    client = ServiceClient(
        callee="lodging",
        base_url=request.app.state.callee_base,
        tokens=ServiceTokens(settings.service_token_secret, caller="reservation"),
        breakers=AsyncCircuitBreakerFactory(),
    )
    try:
        return await client.call("GET", "/probe/things/t-2", idempotent=True)
    finally:
        await client.aclose()


@one_backend
async def test_a_call_to_another_context_is_a_client_span_whose_callee_span_is_its_child(
    settings: Settings, collector: Collector
) -> None:
    callee = build_probe_app(traced(settings, collector, otel_service_name="haot-lodging"))
    caller = build_probe_app(traced(settings, collector, otel_service_name="haot-reservation"))
    caller.include_router(calling)
    # The callee over a real socket, as another process would serve it.
    async with serving(callee) as callee_base:
        caller.state.callee_base = callee_base
        async with serve(caller) as client:
            response = await client.get("/probe/traced/call", headers={"traceparent": TRACEPARENT})
            assert response.json() == {"id": "t-2"}
    # Both platforms stopped: stopping flushed each one's spans.

    asked = collector.one("GET /probe/traced/call")
    call = collector.one("GET lodging")
    answered = collector.one("GET /probe/things/{thing_id}")
    assert {asked.trace_id, call.trace_id, answered.trace_id} == {TRACE_ID}
    assert asked.parent_span_id == CALLER_SPAN
    assert (call.kind, call.parent_span_id) == (CLIENT, asked.span_id)
    # What the call sent as traceparent was its own span: the callee's span is its child.
    assert (answered.kind, answered.parent_span_id) == (SERVER, call.span_id)
    assert (asked.service, call.service, answered.service) == (
        "haot-reservation",
        "haot-reservation",
        "haot-lodging",
    )
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["url.full"] == f"{callee_base}/probe/things/t-2"
    assert call.attributes["peer.service"] == "lodging"


async def test_a_call_to_portone_is_a_client_span_and_sends_its_own_id(
    collector: Collector,
) -> None:
    tracing = Tracing(
        Settings(  # type: ignore[call-arg]
            _env_file=None, jwt_secret=TEST_JWT_SECRET, otel_exporter_otlp_endpoint=collector.url
        ),
        contexts=("payment",),
    )
    portone = PortOne()
    adapter = gateway(transport=httpx.MockTransport(portone))
    token = TRACING.set(tracing)  # as Platform.start sets it for a worker's tasks
    try:
        with trace_bound(TRACEPARENT, name="process payment.test_refund_asked"):
            assert await adapter.get_payment("pay-traced") is None
    finally:
        TRACING.reset(token)
        await adapter.aclose()
        await tracing.shutdown()  # flushes

    applied = collector.one("process payment.test_refund_asked")
    call = collector.one("PortOne get payment")
    assert (applied.kind, applied.trace_id, applied.parent_span_id) == (
        CONSUMER,
        TRACE_ID,
        CALLER_SPAN,
    )
    assert (call.kind, call.trace_id, call.parent_span_id) == (CLIENT, TRACE_ID, applied.span_id)
    (sent,) = portone.headers
    assert sent["traceparent"] == f"00-{TRACE_ID}-{call.span_id}-01"
    assert (call.status, call.attributes["http.response.status_code"]) == (ERROR, 404)
    assert call.attributes["server.address"] == "portone.test"


async def test_an_event_keeps_the_trace_from_the_request_through_its_consumer(
    settings: Settings, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process transport, on both engines: request -> outbox -> relay -> consumer -> outbox."""
    app = build_probe_app(traced(settings, collector))
    app.include_router(asking)
    async with serve(app) as client:
        platform = app.state.platform
        uows = platform.uow_factory("lodging")
        platform.register_consumer(Consumer("test.traced", uows).on(TracedAsked, answering()))
        response = await client.post(
            "/probe/traced/ask", headers=bearer(app) | {"traceparent": TRACEPARENT}
        )
        assert response.status_code == 201, response.text
        # The answer's row is written when the consumer's transaction commits, after its span.
        rows = await outbox_rows(uows.sessions, response.json()["aggregate"], 2)
        assert platform.tracing.force_flush()

    request = collector.one("POST /probe/traced/ask")
    written = collector.one(f"publish {TracedAsked.TYPE}")
    applied = collector.one(f"process {TracedAsked.TYPE}")
    answered = collector.one(f"publish {TracedAnswered.TYPE}")
    assert {s.trace_id for s in (request, written, applied, answered)} == {TRACE_ID}
    assert (written.kind, written.parent_span_id) == (PRODUCER, request.span_id)
    assert (applied.kind, applied.parent_span_id) == (CONSUMER, written.span_id)
    assert (answered.kind, answered.parent_span_id) == (PRODUCER, applied.span_id)
    assert written.attributes["messaging.destination.name"] == "haot.lodging"
    assert applied.attributes["messaging.consumer.group.name"] == "test.traced"
    # The rows (and so the Kafka header) carry the PRODUCER span the consumer continues.
    assert rows[TracedAsked.TYPE].trace_parent == f"00-{TRACE_ID}-{written.span_id}-01"
    assert rows[TracedAnswered.TYPE].trace_parent == f"00-{TRACE_ID}-{answered.span_id}-01"
    (handled,) = [r for r in json_lines(capsys.readouterr().out) if r["event"] == "traced_handled"]
    assert (handled["trace_id"], handled["span_id"]) == (TRACE_ID, applied.span_id)


@one_backend
async def test_the_sampling_ratio_decides_new_traces_and_follows_a_callers_decision(
    settings: Settings, collector: Collector
) -> None:
    app = build_probe_app(traced(settings, collector, otel_traces_sampler_ratio=0.0))
    unsampled = f"00-{'1' * 32}-{CALLER_SPAN}-00"
    async with serve(app) as client:
        for path, headers in [
            ("/probe/things/new", {}),
            ("/probe/things/sampled", {"traceparent": TRACEPARENT}),
            ("/probe/things/unsampled", {"traceparent": unsampled}),
        ]:
            assert (await client.get(path, headers=headers)).status_code == 200
        assert app.state.platform.tracing.force_flush()

    (kept,) = [s for s in collector.spans() if s.kind == SERVER]
    assert (kept.attributes["url.path"], kept.trace_id) == ("/probe/things/sampled", TRACE_ID)


@one_backend
async def test_an_unreachable_collector_costs_a_request_nothing(settings: Settings) -> None:
    closed = free_port()  # nothing listens there
    app = build_probe_app(
        settings.model_copy(update={"otel_exporter_otlp_endpoint": f"http://127.0.0.1:{closed}"})
    )
    async with serve(app) as client:
        tracing = app.state.platform.tracing
        tracing.shutdown_grace_seconds = 0.5
        for n in range(20):
            response = await client.get(
                f"/probe/things/t-{n}", headers={"traceparent": TRACEPARENT}
            )
            assert response.status_code == 200, response.text
        assert (
            await client.get("/probe/sql", params={"statement": "missing_table"})
        ).status_code == 500
        started = time.monotonic()
    # The last export is refused and retried with backoff: the stop gives up after its grace.
    assert time.monotonic() - started < 5


@one_backend
async def test_with_traces_off_the_request_middleware_keeps_the_app_it_was_given(
    settings: Settings,
) -> None:
    app = build_probe_app(settings)
    async with serve(app) as client:
        middleware = request_middleware(app)
        inner = middleware.app
        assert (await client.get("/probe/things/t-4")).status_code == 200
        assert middleware.app is inner
        assert app.state.platform.tracing is None


_LOADED = """
import json, sys
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "google")
                        or m == "haot.platform.tracing")))
"""

_SERVE_ONCE = """
import asyncio, sys
import httpx
from asgi_lifespan import LifespanManager
from haot.app import create_app
from haot.platform.settings import TEST_JWT_SECRET, Settings

async def main():
    settings = Settings(_env_file=None, env="test", jwt_secret=TEST_JWT_SECRET,
                        database_url=sys.argv[1], jobs_schedule=False)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/api/v1/no-such-route")).status_code == 404

asyncio.run(main())
"""


def _modules_loaded(code: str, *args: str) -> list[str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HAOT_", "OTEL_", "PROMETHEUS_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", code + _LOADED, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_with_traces_off_no_tracing_of_opentelemetry_is_imported(sqlite_url: str) -> None:
    """Libraries load parts of OpenTelemetry by themselves: FastAPI its API (for its own bridge,
    which the app switches off), redis-py the SDK's metrics when the SDK is installed. A process
    without traces, even after serving requests, loads nothing more than those: nothing of the
    SDK's traces, the exporter, the instrumentation, protobuf, nor ``haot.platform.tracing``."""
    by_the_libraries = _modules_loaded("import fastapi, redis.asyncio\n")
    served = _modules_loaded(_SERVE_ONCE, sqlite_url)
    assert not [
        module
        for module in served
        if module.startswith(
            (
                "opentelemetry.sdk.trace",
                "opentelemetry.exporter",
                "opentelemetry.instrumentation",
                "opentelemetry.proto",
                "google.protobuf",
                "haot.platform.tracing",
            )
        )
    ], served
    assert set(served) <= set(by_the_libraries), sorted(set(served) - set(by_the_libraries))


@pytest.mark.parametrize(
    ("base", "posted_to"),
    [
        ("http://otel-collector:4318", "http://otel-collector:4318/v1/traces"),
        ("http://otel-collector:4318/", "http://otel-collector:4318/v1/traces"),
        ("https://otlp.example/v1/traces", "https://otlp.example/v1/traces"),
    ],
)
def test_spans_are_posted_to_the_traces_path_of_the_endpoint(base: str, posted_to: str) -> None:
    assert traces_endpoint(base) == posted_to


def test_the_service_is_named_for_what_the_process_serves() -> None:
    assert service_name_for(("identity", "lodging", "reservation")) == "haot"
    assert service_name_for(("coupon",)) == "haot-coupon"
    assert service_name_for(()) == "haot-web"


def test_the_sdks_own_switch_turns_traces_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, jwt_secret=TEST_JWT_SECRET, otel_exporter_otlp_endpoint="http://c:4318"
    )
    assert Tracing.from_settings(settings, contexts=("coupon",)) is None
