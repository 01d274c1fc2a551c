"""The ASGI application: every context in one app (all-in-one) or one context (split)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from haot.bootstrap import api_routers, build_platform, direct_routes, internal_routers
from haot.payment.gateway import PaymentGateway
from haot.platform.body_limit import BodyLimitMiddleware
from haot.platform.direct import DirectRequest, DirectResponse, DirectRoute, DirectRoutesMiddleware
from haot.platform.idempotency import IdempotencyMiddleware
from haot.platform.observability import RequestContextMiddleware, configure_logging
from haot.platform.probes import HEALTHY, probe_routes
from haot.platform.problems import install_problem_handlers
from haot.platform.settings import CONTEXTS, Settings, get_settings
from haot.platform.web import API_PREFIX

if TYPE_CHECKING:
    from haot.fake_portone import FakePortOne


def create_app(
    settings: Settings | None = None,
    *,
    contexts: tuple[str, ...] = CONTEXTS,
    run_workers: bool | None = None,
    gateway: PaymentGateway | None = None,
    freeze_heap_when_warm: bool = False,
    pages: bool | None = None,
) -> FastAPI:
    """``pages`` serves the web pages; by default with the whole product in one process (ADR
    0017). The pages alone (``contexts=()``, ``pages=True``: ``haot serve --context web``) call
    the API at ``HAOT_WEB_API_URL``, the gateway of a split deployment (ADR 0018).
    ``run_workers`` runs relays, consumers and jobs inside the web process; by default only in
    the embedded setup (in-process event bus), where there is no separate ``haot worker``.
    ``freeze_heap_when_warm``: once warmed up (the offer index loaded), move everything alive to
    the collector's permanent generation (a served process; ``haot serve`` sets it)."""
    settings = settings or get_settings()
    serves_pages = set(CONTEXTS) <= set(contexts) if pages is None else pages
    if serves_pages and not set(CONTEXTS) <= set(contexts) and not settings.web_api_url:
        raise ValueError(PAGES_ALONE_NEED_API_URL)
    configure_logging(settings.log_level, json=settings.log_json)
    fake_portone = _fake_portone(settings) if "payment" in contexts else None
    in_process_workers = (not settings.kafka_enabled) if run_workers is None else run_workers
    in_process_workers = in_process_workers and bool(contexts)  # the pages alone run nothing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform_gateway = gateway
        if platform_gateway is None and fake_portone is not None:
            # The built-in fake is reached in-process (its state is in Redis, shared by workers).
            from haot.payment.portone import PortOneGateway

            platform_gateway = PortOneGateway.from_settings(
                settings, transport=fake_portone.transport()
            )
        platform = build_platform(settings, contexts=contexts, gateway=platform_gateway)
        app.state.platform = platform
        if fake_portone is not None:
            fake_portone.bind(platform.redis)
            platform.services["fake_portone"] = fake_portone
        await platform.start()
        await platform.warm_up()
        if freeze_heap_when_warm:
            # What warm-up built lives as long as the process (the offer index alone holds an
            # item per lodging): kept out of every later full collection, which would otherwise
            # scan it and stall each request in flight.
            gc.collect()
            gc.freeze()
        if in_process_workers:
            platform.start_workers()
        try:
            yield
        finally:
            if fake_portone is not None:
                await fake_portone.aclose()
            await platform.stop()

    app = FastAPI(
        title="haot",
        version="0.1.0",
        description="How About Over There: accommodation booking platform API",
        lifespan=lifespan,
        # Metrics and traces are ours (Prometheus, trace ids in the logs); FastAPI's built-in
        # OpenTelemetry bridge looked the providers up on every request (``make bench`` profile).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url="/docs" if settings.api_docs_enabled else None,
        redoc_url="/redoc" if settings.api_docs_enabled else None,
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
    )
    if serves_pages:
        from haot.web.pages import page_error

        install_problem_handlers(app, pages=page_error)
        app.state.error_page = page_error  # for the 500s the request middleware answers
    else:
        install_problem_handlers(app)

    app.router.routes.extend(probe_routes(settings))
    # After the probes: routes are matched in order, and probes and scrapes come every few seconds.
    for router in [*api_routers(contexts), *internal_routers(contexts)]:
        app.include_router(router)

    if fake_portone is not None:
        app.state.fake_portone = fake_portone
        app.mount("/fake-portone", fake_portone.app)

    if serves_pages:
        from haot.web.account import router as account_pages
        from haot.web.admin import router as admin_pages
        from haot.web.booking import router as booking_pages
        from haot.web.checkout import router as checkout_pages
        from haot.web.host import router as host_pages
        from haot.web.pages import STATIC
        from haot.web.pages import router as site_pages
        from haot.web.reviews import router as review_pages
        from haot.web.wallet import router as wallet_pages

        for page_router in (
            site_pages,
            account_pages,
            booking_pages,
            checkout_pages,
            review_pages,
            wallet_pages,
            host_pages,
            admin_pages,
        ):
            app.include_router(page_router)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Outermost last: request context, then Idempotency-Key, then the direct routes (the liveness
    # probe among them: it is asked every few seconds, and needs nothing FastAPI does).
    direct = [DirectRoute("GET", "/healthz", _healthz), *direct_routes(contexts)]
    app.add_middleware(DirectRoutesMiddleware, routes=direct)
    app.add_middleware(
        IdempotencyMiddleware,
        keyed_by_route={(r.method, r.path) for r in direct if r.keeps_idempotency_key},
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        per_path={f"{API_PREFIX}/webhooks/portone": settings.webhook_max_body_bytes},
    )
    app.add_middleware(RequestContextMiddleware)
    if origins := settings.cors_origin_list:
        # Outermost: a preflight is answered before anything else looks at the request.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed", "Location"],
            max_age=600,
        )
    if serves_pages and not set(CONTEXTS) <= set(contexts):
        app.openapi = lambda: _product_openapi(app)  # type: ignore[method-assign]
    else:
        app.openapi = lambda: _openapi_with_idempotency_keys(app)  # type: ignore[method-assign]
    return app


PAGES_ALONE_NEED_API_URL = (
    "the pages served without the whole API call it at HAOT_WEB_API_URL (the gateway's "
    "address, e.g. http://127.0.0.1:8080): set it"
)


async def _healthz(request: DirectRequest) -> DirectResponse:
    return DirectResponse(200, HEALTHY)


_WRITES = ("post", "put", "patch", "delete")


def _openapi_with_idempotency_keys(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the Idempotency-Key header on every write (the middleware
    accepts it on all of them, so every write documents it)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                if method not in _WRITES:
                    continue
                parameters = operation.setdefault("parameters", [])
                if not any(
                    p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"
                    for p in parameters
                ):
                    parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        app.openapi_schema = schema
    return app.openapi_schema


def _product_openapi(app: FastAPI) -> dict[str, Any]:
    """The pages alone (split deployment) answer /openapi.json and /docs at the gateway: with
    the whole API's document, the all-in-one app's, built from the same routers."""
    if app.openapi_schema is None:
        whole = FastAPI(title=app.title, version=app.version, description=app.description)
        for router in api_routers(CONTEXTS):
            whole.include_router(router)
        app.openapi_schema = _openapi_with_idempotency_keys(whole)
    return app.openapi_schema


IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Retry-safe writes (Stripe semantics): the same key and body replay the stored answer "
        "(Idempotent-Replayed: true); the same key with another body is 422; while the first "
        "request runs, 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _fake_portone(settings: Settings) -> FakePortOne | None:
    """The built-in fake PortOne when no real one is configured (``HAOT_PORTONE_API_BASE``)."""
    if not settings.fake_portone_enabled:
        return None
    from haot.fake_portone import FakePortOne

    return FakePortOne(settings)
