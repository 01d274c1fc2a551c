"""Every route of every process reaches that process through the gateway, as in the all-in-one app.

The routes are read from the apps themselves (``create_app(contexts=(c,))`` for each context, the
all-in-one app for the pages), not from a list kept here: a route added without a gateway rule,
or one that the gateway would send to the wrong process, fails this test.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from haot.app import create_app
from haot.bootstrap import build_platform, direct_routes
from haot.gateway import SHARED_JOBS_OWNER, WEB
from haot.platform.settings import CONTEXTS, Settings
from tests.conftest import make_settings
from tests.gateway.stubs import Gateway

GATEWAY_HEALTH = "gateway: /healthz"
NOT_ROUTED = "gateway: 404"
JOBS = "by job name"

# Routes every process serves (the platform's own): where the gateway sends each. A new route
# shared by every context fails the test until it is given a place here (and in the gateway).
SHARED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): GATEWAY_HEALTH,
    ("GET", "/metrics"): NOT_ROUTED,
    ("GET", "/readyz"): WEB,
    ("GET", "/openapi.json"): WEB,
    ("GET", "/docs"): WEB,
    ("GET", "/docs/oauth2-redirect"): WEB,
    ("GET", "/redoc"): WEB,
    ("POST", "/api/v1/admin/jobs/{name}/run"): JOBS,
}
JOB_ROUTE = "/api/v1/admin/jobs/{name}/run"
MOUNTED = "*"  # a mounted app: every path under it


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    expected: str  # a process's name, GATEWAY_HEALTH or NOT_ROUTED
    route: str


def _settings() -> Settings:
    # Routes and jobs are known without a database or Redis: nothing here connects.
    unused = "http://127.0.0.1:9"
    return make_settings(
        "sqlite+aiosqlite:///unused-by-gateway-tests.db",
        lodging_url=unused,
        coupon_url=unused,
        point_url=unused,
        payment_url=unused,
    )


def _routes(contexts: tuple[str, ...]) -> set[tuple[str, str]]:
    """(method, path template) of every route the app for ``contexts`` serves; a mounted app as
    (``MOUNTED``, its path)."""
    app = create_app(_settings(), contexts=contexts)
    routes: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            routes.add((MOUNTED, str(route.path)))
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            routes.add((method, str(route.path)))
    # The routes answered before FastAPI's router (haot.platform.direct) are routes too.
    routes |= {(route.method, route.path) for route in direct_routes(contexts)}
    return routes


def _jobs_by_context() -> dict[str, set[str]]:
    settings = _settings()
    return {c: set(build_platform(settings, contexts=(c,)).jobs.names()) for c in CONTEXTS}


def _job_owners(jobs: dict[str, set[str]]) -> dict[str, str]:
    """Each job's process: the one context that registers it, or ``SHARED_JOBS_OWNER`` for the
    jobs every context registers. A job of some contexts but not all has no sensible owner."""
    owners: dict[str, str] = {}
    for name in set().union(*jobs.values()):
        having = sorted(c for c, names in jobs.items() if name in names)
        if len(having) == 1:
            owners[name] = having[0]
        elif len(having) == len(CONTEXTS):
            owners[name] = SHARED_JOBS_OWNER
        else:
            pytest.fail(f"job {name!r} runs in {having}: the gateway cannot route it by name")
    return owners


def _fill(template: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), template)


def _probes() -> list[Probe]:
    own = {c: _routes((c,)) for c in CONTEXTS}
    shared = set.intersection(*own.values())
    assert shared == set(SHARED), (
        "routes every context serves changed; give each its gateway rule and a place in SHARED: "
        f"new {sorted(shared - set(SHARED))}, gone {sorted(set(SHARED) - shared)}"
    )
    probes: list[Probe] = []
    served_by: dict[str, set[str]] = {}
    for context, routes in own.items():
        for method, template in sorted(routes - shared):
            served_by.setdefault(template, set()).add(context)
            path = f"{template}/x" if method == MOUNTED else _fill(template)
            expected = NOT_ROUTED if template.startswith("/internal/") else context
            probes.append(Probe("GET" if method == MOUNTED else method, path, expected, template))
    two = {template: names for template, names in served_by.items() if len(names) > 1}
    assert not two, f"paths served by more than one context (no path rule can route them): {two}"

    for (method, template), expected in SHARED.items():
        if expected == JOBS:
            for job, owner in sorted(_job_owners(_jobs_by_context()).items()):
                path = template.replace("{name}", job)
                probes.append(Probe(method, path, owner, template))
            unknown = template.replace("{name}", "no-such-job")
            probes.append(Probe(method, unknown, SHARED_JOBS_OWNER, template))
        else:
            probes.append(Probe(method, template, expected, template))

    # The pages: what the whole product serves and no context alone does.
    pages = _routes(CONTEXTS) - set().union(*own.values())
    assert pages, "no page routes found in the all-in-one app"
    for method, template in sorted(pages):
        path = f"{template}/app.css" if method == MOUNTED else _fill(template)
        probes.append(Probe("GET" if method == MOUNTED else method, path, WEB, template))
    return probes


PROBES = _probes()


def test_the_probes_cover_what_the_gateway_must_split() -> None:
    """The cases a prefix alone would get wrong are among the routes probed (a sanity check of the
    enumeration, not of the gateway)."""
    by_route = {(p.method, p.route): p.expected for p in PROBES}
    assert by_route[("GET", "/api/v1/lodgings/{lodging_id}/reviews")] == "review"
    assert by_route[("GET", "/api/v1/lodgings/{lodging_id}")] == "lodging"
    assert by_route[("POST", "/api/v1/reservations/{reservation_id}/review")] == "review"
    assert by_route[("POST", "/api/v1/reservations/{reservation_id}/cancel")] == "reservation"
    assert by_route[("GET", "/payments/{payment_id}/checkout")] == "payment"
    assert by_route[("GET", "/payments/{payment_id}/return")] == WEB
    assert by_route[("POST", "/internal/v1/point/holds")] == NOT_ROUTED
    jobs = {p.path.split("/")[-2]: p.expected for p in PROBES if p.route == JOB_ROUTE}
    assert jobs["expire-holds"] == jobs["complete-stays"] == "reservation"
    assert jobs["expire-points"] == "point"
    assert jobs["reconcile-payments"] == "payment"
    assert jobs["reconcile-coupons"] == "coupon"
    assert jobs["purge-outbox"] == SHARED_JOBS_OWNER


async def test_every_route_reaches_the_process_that_serves_it(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    wrong: list[str] = []
    for probe in PROBES:
        body = b"{}" if probe.method in ("POST", "PUT", "PATCH") else None
        response = await client.request(
            probe.method,
            probe.path,
            content=body,
            headers={"Content-Type": "application/json"} if body else {},
        )
        got = _who_answered(response)
        if got != probe.expected:
            wrong.append(
                f"{probe.method} {probe.path} ({probe.route}): {got}, not {probe.expected}"
            )
        elif probe.expected not in (GATEWAY_HEALTH, NOT_ROUTED):
            echoed = _echoed(response)
            if (echoed["method"], echoed["target"]) != (probe.method, probe.path):
                wrong.append(f"{probe.method} {probe.path} arrived as {echoed}")
    assert not wrong, "\n".join(wrong) + f"\n(nginx errors: {gateway.error_log()[-2000:]})"


def _who_answered(response: httpx.Response) -> str:
    if response.headers.get("content-type") == "application/problem+json":
        problem = response.json()
        if response.status_code == 404 and problem.get("code") == "not_found":
            return NOT_ROUTED
        return f"gateway {response.status_code} {problem.get('code')}"
    if response.status_code != 200:
        return f"status {response.status_code}"
    body = _echoed(response)
    if body == {"status": "ok"}:
        return GATEWAY_HEALTH
    return str(body.get("upstream"))


def _echoed(response: httpx.Response) -> dict[str, Any]:
    """What the stub echoed: its JSON, or a stream's first event."""
    if response.headers.get("content-type") == "text/event-stream":
        first = next(line for line in response.text.splitlines() if line.startswith("data: "))
        result: dict[str, Any] = json.loads(first.removeprefix("data: "))
        return result
    answer: dict[str, Any] = response.json()
    return answer


async def test_unknown_paths_go_where_the_all_in_one_app_would_answer_them(
    client: httpx.AsyncClient,
) -> None:
    """An API path nobody serves is the gateway's 404 (no process has it); any other path is the
    pages process's (its 404 page, or a page added later)."""
    for path in ("/api/v1/no-such-thing", "/api/v2/lodgings", "/api", "/internal"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
    for path in ("/no-such-page", "/metrics/", "/favicon.ico"):
        assert (await client.get(path)).json()["upstream"] == WEB, path


async def test_the_target_goes_upstream_as_the_client_sent_it(client: httpx.AsyncClient) -> None:
    """Query and percent-encoding unchanged: the service parses what the client wrote."""
    target = "/api/v1/lodgings?region=%EC%84%9C%EC%9A%B8&amenities=wifi,parking&q=a%20b"
    answer = (await client.get(target)).json()
    assert (answer["upstream"], answer["target"]) == ("lodging", target)
    target = "/api/v1/lodgings/abc%2Fdef/calendar?month=2027-01"
    answer = (await client.get(target)).json()
    assert (answer["upstream"], answer["target"]) == ("lodging", target)
