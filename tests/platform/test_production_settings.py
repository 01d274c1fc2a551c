"""``HAOT_ENV=production`` refuses what would leave a hole: the built-in fake PortOne (anyone can
approve any payment on its checkout page), the fake's API secret and other published secrets, and
the demo seed (an admin with a published password)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from haot.app import create_app
from haot.bootstrap import build_platform
from haot.platform.settings import (
    FAKE_PORTONE_API_SECRET,
    TEST_JWT_SECRET,
    RefusedInProduction,
    Settings,
)
from haot.seed import seed
from tests.support.services import free_port, wait_until_healthy

# Nothing here connects: the host does not exist, so a refusal must come before any connection.
UNREACHABLE_POSTGRES = "postgresql+asyncpg://haot@unreachable.invalid:5432/haot"


def production(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "env": "production",
        "database_url": UNREACHABLE_POSTGRES,
        "redis_url": "redis://unreachable.invalid:6379/0",
        "jwt_secret": secrets.token_urlsafe(48),
        "portone_api_base": "https://api.portone.io",
        "portone_store_id": "store-" + secrets.token_hex(8),
        "portone_channel_key": "channel-key-" + secrets.token_hex(8),
        "portone_api_secret": secrets.token_urlsafe(32),
        "portone_webhook_secret": "whsec_" + secrets.token_urlsafe(24).replace("-", "A"),
    }
    values.update(overrides)
    return values


def make(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **production(**overrides))  # type: ignore[call-arg]


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = make()
    assert settings.env == "production"
    assert not settings.fake_portone_enabled


def test_production_refuses_the_built_in_fake_portone() -> None:
    with pytest.raises(ValidationError, match="built-in fake PortOne"):
        make(portone_api_base="")


@pytest.mark.parametrize("field", ["portone_store_id", "portone_channel_key"])
def test_production_needs_what_the_checkout_page_opens_portone_with(field: str) -> None:
    with pytest.raises(ValidationError, match="HAOT_PORTONE_STORE_ID and HAOT_PORTONE_CHANNEL_KEY"):
        make(**{field: ""})


def test_production_refuses_the_fake_portone_api_secret() -> None:
    with pytest.raises(ValidationError, match="HAOT_PORTONE_API_SECRET"):
        make(portone_api_secret=FAKE_PORTONE_API_SECRET)


def test_production_refuses_the_fake_secret_when_left_at_its_default() -> None:
    values = production()
    del values["portone_api_secret"]
    with pytest.raises(ValidationError, match="HAOT_PORTONE_API_SECRET"):
        Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["jwt_secret", "portone_api_secret", "portone_webhook_secret"])
@pytest.mark.parametrize("published", [TEST_JWT_SECRET, FAKE_PORTONE_API_SECRET])
def test_production_refuses_published_secrets(field: str, published: str) -> None:
    with pytest.raises(ValidationError, match=f"HAOT_{field.upper()}"):
        make(**{field: published})


def test_development_keeps_the_fake_and_its_default_secret() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, env="development", jwt_secret=TEST_JWT_SECRET
    )
    assert settings.fake_portone_enabled
    assert settings.portone_api_secret == FAKE_PORTONE_API_SECRET


def _mounted_paths(settings: Settings) -> set[str]:
    app = create_app(settings)
    return {getattr(route, "path", "") for route in app.routes}


def test_the_fake_is_never_mounted_in_production() -> None:
    assert "/fake-portone" in _mounted_paths(
        Settings(_env_file=None, env="test", jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    )
    # Even settings that skipped validation (constructed in code) never mount it in production.
    unchecked = Settings.model_construct(**{**make().model_dump(), "portone_api_base": ""})
    assert not unchecked.fake_portone_enabled
    assert "/fake-portone" not in _mounted_paths(unchecked)
    assert "/fake-portone" not in _mounted_paths(make())


async def test_seed_refuses_production_before_touching_anything() -> None:
    with pytest.raises(RefusedInProduction, match=r"admin@haot\.dev"):
        await seed(make())


def _haot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    return subprocess.run(
        [sys.executable, "-m", "haot.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",  # no .env from the checkout
    )


def _production_env(**overrides: str) -> dict[str, str]:
    values = {f"HAOT_{k.upper()}": str(v) for k, v in production().items()}
    values.update(overrides)
    return values


def test_the_command_line_refuses_to_seed_production_in_one_line() -> None:
    result = _haot("seed", **_production_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "haot: haot seed refuses to run in production: it would create admin@haot.dev with "
        "the published demo password"
    ]


def test_the_command_line_refuses_to_serve_production_with_the_fake() -> None:
    result = _haot("serve", "--port", "1", **_production_env(HAOT_PORTONE_API_BASE=""))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("haot: configuration error: production refuses the built-in fake")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("field", ["database_url", "lodging_database_url"])
def test_production_refuses_a_sqlite_database_it_is_given(field: str) -> None:
    with pytest.raises(
        ValidationError, match=f"production refuses SQLite: set HAOT_{field.upper()}"
    ):
        make(**{field: "sqlite+aiosqlite:///./haot.db"})


def test_production_refuses_the_sqlite_default_where_a_database_is_opened() -> None:
    """The pages alone open no database: HAOT_DATABASE_URL may stay unset for them, but every
    process that keeps a context's tables refuses the SQLite default before it connects."""
    values = production()
    del values["database_url"]
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    settings.refuse_sqlite_in_production(())  # the pages alone
    with pytest.raises(RefusedInProduction, match="SQLite for the identity context"):
        settings.refuse_sqlite_in_production(("identity",))
    with_own = Settings(  # type: ignore[call-arg]
        _env_file=None, **values, payment_database_url=UNREACHABLE_POSTGRES
    )
    with pytest.raises(RefusedInProduction, match="HAOT_LODGING_DATABASE_URL"):
        with_own.refuse_sqlite_in_production(("payment", "lodging"))
    # Its own database is not enough: the shared tables (idempotency keys) would be in SQLite.
    with pytest.raises(RefusedInProduction, match="the shared tables"):
        with_own.refuse_sqlite_in_production(("payment",))
    make().refuse_sqlite_in_production(("payment", "lodging"))
    # Even a platform built in code (no command line) refuses before anything connects.
    with pytest.raises(RefusedInProduction, match="SQLite for the identity context"):
        build_platform(settings, contexts=("identity",))


@pytest.mark.parametrize(
    "command", [["worker", "--context", "point"], ["migrate"], ["serve", "--port", "1"]]
)
def test_the_command_line_refuses_the_sqlite_default_in_one_line(command: list[str]) -> None:
    env = _production_env()
    del env["HAOT_DATABASE_URL"]
    result = _haot(*command, **env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("haot: production refuses SQLite for the "), line


def test_the_pages_alone_serve_in_production_without_a_database_url() -> None:
    env = _production_env(HAOT_WEB_API_URL="http://127.0.0.1:9")
    del env["HAOT_DATABASE_URL"]
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "haot.cli", "serve", "--context", "web", "--port", str(port)],
        env={**clean, **env},
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.communicate(timeout=30)
