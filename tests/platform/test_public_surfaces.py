"""What a deployment exposes beside the API: ``/metrics`` behind a token (never open in
production), ``/docs`` off in production unless asked for, and a public base URL that follows the
port ``haot serve`` listens on (issue 11, items 12 and 15)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx
import pytest

from haot.app import create_app
from haot.cli import served_base_url
from haot.platform.settings import TEST_JWT_SECRET, Settings


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "database_url": "postgresql+asyncpg://haot@unreachable.invalid/haot",
        "redis_url": "redis://unreachable.invalid:6379/0",
        "jwt_secret": secrets.token_urlsafe(48),
        "portone_api_base": "https://api.portone.io",
        "portone_store_id": "store-" + secrets.token_hex(8),
        "portone_channel_key": "channel-key-" + secrets.token_hex(8),
        "portone_api_secret": secrets.token_urlsafe(32),
        "portone_webhook_secret": "whsec_" + "A" * 32,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


async def get(settings: Settings, path: str, **headers: str) -> httpx.Response:
    """One request to the app, without its lifespan (these routes touch no backend)."""
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_production_serves_no_metrics_without_a_token() -> None:
    assert (await get(production(), "/metrics")).status_code == 404


async def test_metrics_ask_for_the_token_when_one_is_set() -> None:
    token = secrets.token_urlsafe(24)
    settings = production(metrics_token=token)
    assert (await get(settings, "/metrics")).status_code == 401
    assert (await get(settings, "/metrics", authorization="Bearer wrong")).status_code == 401
    scraped = await get(settings, "/metrics", authorization=f"Bearer {token}")
    assert scraped.status_code == 200
    assert "haot_http_requests_total" in scraped.text


async def test_development_serves_metrics_and_docs_openly() -> None:
    settings = Settings(_env_file=None, env="development", jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    assert (await get(settings, "/metrics")).status_code == 200
    assert (await get(settings, "/docs")).status_code == 200
    assert (await get(settings, "/openapi.json")).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_production_hides_the_api_docs_unless_asked(path: str) -> None:
    assert (await get(production(), path)).status_code == 404
    assert (await get(production(api_docs=True), path)).status_code == 200


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 9000, "http://127.0.0.1:9000"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
        ("::", 8000, "http://[::1]:8000"),
        ("haot.local", 80, "http://haot.local:80"),
    ],
)
def test_the_public_base_url_follows_the_served_address(
    host: str, port: int, expected: str
) -> None:
    assert served_base_url(host, port) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "http://127.0.0.1:9000"), ("https://haot.example", "https://haot.example")],
)
def test_haot_serve_derives_the_public_base_url_only_when_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, given: str | None, expected: str
) -> None:
    import uvicorn

    from haot import cli
    from haot.platform.settings import get_settings

    monkeypatch.chdir(tmp_path)  # no .env
    for name in list(os.environ):
        if name.startswith("HAOT_"):
            monkeypatch.delenv(name)
    # Recorded first, so that what ``haot serve`` writes into the environment is undone after.
    for name in ("HAOT_PUBLIC_BASE_URL", "HAOT_SERVE_CONTEXTS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("HAOT_JWT_SECRET", TEST_JWT_SECRET)
    if given is not None:
        monkeypatch.setenv("HAOT_PUBLIC_BASE_URL", given)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
    get_settings.cache_clear()
    try:
        cli.main(["serve", "--port", "9000"])
        assert served["port"] == 9000
        assert get_settings().public_base_url == expected
        assert os.environ["HAOT_PUBLIC_BASE_URL"] == expected
    finally:
        get_settings.cache_clear()


def development(**overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, env="development", jwt_secret=TEST_JWT_SECRET, **overrides
    )


async def test_openapi_declares_the_bearer_scheme_and_idempotency_keys() -> None:
    document = (await get(development(), "/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    me = document["paths"]["/api/v1/users/me"]["get"]
    assert {"HTTPBearer": []} in me["security"]

    def keys(path: str, method: str) -> list[dict[str, Any]]:
        parameters = document["paths"][path][method].get("parameters", [])
        return [p for p in parameters if p["name"].lower() == "idempotency-key"]

    assert len(keys("/api/v1/reservations", "post")) == 1  # declared by the route itself
    assert len(keys("/api/v1/host/lodgings", "post")) == 1  # added for every write
    assert keys("/api/v1/lodgings", "get") == []


async def test_cors_answers_configured_origins_only() -> None:
    preflight = {
        "origin": "https://app.haot.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,idempotency-key",
    }
    settings = development(cors_origins="https://app.haot.example, https://admin.haot.example")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        allowed = await client.options("/api/v1/reservations", headers=preflight)
        refused = await client.options(
            "/api/v1/reservations", headers={**preflight, "origin": "https://evil.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.haot.example"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers
    # Without configuration no origin is allowed at all.
    plain = await get(development(), "/healthz", origin="https://app.haot.example")
    assert "access-control-allow-origin" not in plain.headers
