"""The operator's surfaces of every haot process: ``/healthz``, ``/readyz`` and ``/metrics``.

``haot serve`` answers them beside its API; ``haot worker --metrics-port`` answers them alone
(``worker_http``), so that what only workers measure (consumer lag, relay errors, poison events,
job runs, coupon issuance) reaches Prometheus in the split and Kafka deployments too, and an
orchestrator can probe a worker like any other process.

Each route reads the process's ``Platform`` from ``request.app.state.platform``.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from haot.platform.metrics import render_metrics
from haot.platform.settings import Settings

if TYPE_CHECKING:
    from haot.platform.container import Platform

HEALTHY = b'{"status":"ok"}'


def _platform(request: Request) -> Platform | None:
    return getattr(request.app.state, "platform", None)


async def healthz(request: Request) -> Response:
    """Alive: the process's event loop answers."""
    return Response(HEALTHY, media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready: every dependency of this process answered its check within its deadline."""
    platform = _platform(request)
    if platform is None:  # still starting
        return JSONResponse({"status": "unavailable", "checks": {}}, status_code=503)
    checks = await platform.readiness()
    ready = all(v in ("ok", "in-process") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


def metrics_route(settings: Settings) -> Route | None:
    """``/metrics``, asking for ``Authorization: Bearer <HAOT_METRICS_TOKEN>`` when a token is
    set; None where it must not be served (production without a token)."""
    if not settings.metrics_served:
        return None
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    async def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        # Readiness (haot_dependency_up) and the gauges of shared state, measured now.
        platform = _platform(request)
        if platform is not None:
            await platform.measure_for_scrape()
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return Route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def probe_routes(settings: Settings) -> list[Route]:
    """The three routes, in the order they should be matched: first (probes and scrapes come
    every few seconds)."""
    routes = [
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
    ]
    metrics = metrics_route(settings)
    return routes if metrics is None else [*routes, metrics]
