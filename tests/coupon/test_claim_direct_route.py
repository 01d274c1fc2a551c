"""The claim endpoint is served as a direct route (before FastAPI's router). It must answer exactly
as the ordinary FastAPI route declared for it would: same statuses, bodies and problem codes, the
platform middleware still around it (request id, metrics under the route template,
Idempotency-Key), and the route still in the OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from haot.app import create_app
from haot.platform.auth import Role
from haot.platform.direct import DirectRoutesMiddleware
from haot.platform.metrics import render_metrics
from haot.platform.settings import Settings
from tests.coupon.test_claim_flow import bearer, open_event

CLAIM = "/api/v1/coupon-events/{}/claims"
UNKNOWN_EVENT = "00000000-0000-7000-8000-000000000001"


def _without_direct_routes(app: FastAPI) -> FastAPI:
    # The middleware stack is built on the first request: dropping the entry before it leaves the
    # FastAPI route to answer.
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DirectRoutesMiddleware]
    return app


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def _answers(client: httpx.AsyncClient) -> list[tuple[int, Any]]:
    """Every kind of answer the claim endpoint gives, with volatile values masked."""
    event = await open_event(client, quantity=1)
    first = bearer(client, Role.USER)
    answers = []
    for path, headers in [
        (CLAIM.format(event), first),  # 202
        (CLAIM.format(event), first),  # 409 already claimed
        (CLAIM.format(event), bearer(client, Role.USER)),  # 409 sold out
        (CLAIM.format(UNKNOWN_EVENT), bearer(client, Role.USER)),  # 404 no such event
        (CLAIM.format("not-a-uuid"), bearer(client, Role.USER)),  # 404 not an id
        (CLAIM.format(event), {}),  # 401 no token
        (CLAIM.format(event), {"Authorization": "Bearer nonsense"}),  # 401 bad token
        (CLAIM.format(event), {"Authorization": "Basic abc"}),  # 401 wrong scheme
    ]:
        response = await client.post(path, headers=headers)
        assert response.headers["x-request-id"]
        body = response.json()
        if response.status_code == 202:
            assert body["claim_id"].startswith("clm_" + event.replace("-", ""))
            body["claim_id"] = "<claim>"
        else:
            assert response.headers["content-type"] == "application/problem+json"
            body["instance"] = body.get("instance", "").replace(event, "<event>")
        answers.append((response.status_code, body))
    return answers


async def test_the_direct_route_answers_as_the_fastapi_route_would(settings: Settings) -> None:
    async with client_of(create_app(settings)) as direct:
        through_direct = await _answers(direct)
    async with client_of(_without_direct_routes(create_app(settings))) as routed:
        through_router = await _answers(routed)

    assert [status for status, _ in through_direct] == [202, 409, 409, 404, 404, 401, 401, 401]
    assert through_direct == through_router


async def test_claims_are_counted_under_the_route_template(app_client: httpx.AsyncClient) -> None:
    event = await open_event(app_client, quantity=5)
    template = "/api/v1/coupon-events/{event_id}/claims"

    def served() -> float:
        text = render_metrics()[0].decode()
        total = 0.0
        for line in text.splitlines():
            labels = (f'route="{template}"', 'method="POST"', 'status="202"')
            if line.startswith("haot_http_requests_total{") and all(x in line for x in labels):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = served()
    for _ in range(3):
        response = await app_client.post(CLAIM.format(event), headers=bearer(app_client, Role.USER))
        assert response.status_code == 202
    assert served() - before == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_idempotency_key_replays_the_direct_answer(app_client: httpx.AsyncClient) -> None:
    event = await open_event(app_client, quantity=5)
    headers = {**bearer(app_client, Role.USER), "Idempotency-Key": f"claim-{uuid.uuid4()}"}

    first = await app_client.post(CLAIM.format(event), headers=headers)
    again = await app_client.post(CLAIM.format(event), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"


async def test_the_claim_route_stays_in_the_openapi_document(
    app_client: httpx.AsyncClient,
) -> None:
    schema = (await app_client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/coupon-events/{event_id}/claims"]["post"]
    assert {"202", "401", "404", "409", "429", "503"} <= set(operation["responses"])
