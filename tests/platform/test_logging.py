"""Every log line is one JSON object: structlog's own and the standard library's (uvicorn,
SQLAlchemy, aiokafka, httpx, alembic) alike, with the request id, trace id and user id of what is
being served, and secrets redacted (issue 16, item 5)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import structlog
from fastapi import APIRouter

from haot.platform.observability import (
    StdoutHandler,
    configure_logging,
    current_traceparent,
    trace_bound,
    trace_id_of,
)
from haot.platform.settings import TEST_JWT_SECRET, Settings
from haot.platform.web import CurrentUser
from tests.platform.conftest import bearer, build_probe_app, one_backend, serve
from tests.platform.test_observability import json_lines

REQUEST_ID = "req-logging-1"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_a_library_warning_is_one_json_line_with_the_request_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    user_id = str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(
        request_id=REQUEST_ID, trace_id=TRACE_ID, span_id="00f067aa0ba902b7", user_id=user_id
    ):
        logging.getLogger("aiokafka.conn").error(
            "Unable connect to node with id %s: %s", 1, "Connect call failed ('127.0.0.1', 1)"
        )
    logging.getLogger("aiokafka").warning("outside any request")

    inside, outside = json_lines(capsys.readouterr().out)
    assert inside["event"] == (
        "Unable connect to node with id 1: Connect call failed ('127.0.0.1', 1)"
    )
    assert inside["level"] == "error"
    assert inside["logger"] == "aiokafka.conn"
    assert inside["timestamp"].endswith("Z")
    assert (inside["request_id"], inside["trace_id"], inside["user_id"]) == (
        REQUEST_ID,
        TRACE_ID,
        user_id,
    )
    assert outside["event"] == "outside any request"
    assert not {"request_id", "trace_id", "user_id"} & outside.keys()


def test_secrets_stay_redacted_in_library_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    logging.getLogger("httpx").warning(
        "call failed",
        extra={
            "Authorization": "Bearer tok-foreign-header",
            "body": {"email": "a@b.co", "password": "pw-foreign-nested"},
            "attempt": 2,
        },
    )
    out = capsys.readouterr().out
    assert "tok-foreign-header" not in out
    assert "pw-foreign-nested" not in out
    (record,) = json_lines(out)
    assert record["Authorization"] == "[redacted]"
    assert record["body"] == {"email": "a@b.co", "password": "[redacted]"}
    assert record["attempt"] == 2


def test_a_library_exception_is_one_line_with_its_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logging.getLogger("sqlalchemy.pool.impl").exception("connection invalidated")
    (record,) = json_lines(capsys.readouterr().out)
    assert record["event"] == "connection invalidated"
    assert record["level"] == "error"
    assert "ConnectionResetError: peer went away" in record["exception"]
    assert "Traceback" in record["exception"]


def test_chatty_libraries_log_from_warning_and_the_rest_from_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    # SQLAlchemy at INFO would log every statement (and pays for checking that per connection).
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1")
    logging.getLogger("httpx").info('HTTP Request: GET http://x "HTTP/1.1 200 OK"')
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0010 -> 0011")
    logging.getLogger("alembic.runtime.migration").debug("not at INFO")
    records = json_lines(capsys.readouterr().out)
    assert [(r["logger"], r["event"]) for r in records] == [
        ("alembic.runtime.migration", "Running upgrade 0010 -> 0011")
    ]


def test_configuring_again_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    configure_logging("WARNING", json=True)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, StdoutHandler)]
    assert len(handlers) == 1
    logging.getLogger("probe.library").info("below the level now")
    logging.getLogger("probe.library").warning("once")
    records = json_lines(capsys.readouterr().out)
    assert [r["event"] for r in records] == ["once"]


def test_haot_serve_logs_uvicorn_lines_as_json(tmp_path: Path, redis_available: str) -> None:
    """uvicorn's own lines reach stdout as JSON, nothing on stderr: even those of the process
    that supervises the workers and never builds the app (here: the port is taken)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    environment |= {
        "HAOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'haot.db'}",
        "HAOT_JWT_SECRET": TEST_JWT_SECRET,
        "HAOT_REDIS_URL": redis_available,
        "HAOT_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),  # else serve makes a directory of its own
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = subprocess.run(
            [
                sys.executable,
                "-m",
                "haot.cli",
                "serve",
                "--migrate",
                "--workers",
                "2",
                "--port",
                str(port),
            ],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
    assert served.returncode != 0
    assert served.stderr == ""
    records = json_lines(served.stdout)
    (bind_error,) = [r for r in records if r.get("logger") == "uvicorn.error"]
    assert bind_error["level"] == "error"
    assert "address already in use" in bind_error["event"].lower()
    assert bind_error["timestamp"]


def test_haot_migrate_logs_alembic_lines_as_json(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    environment |= {
        "HAOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'haot.db'}",
        "HAOT_JWT_SECRET": TEST_JWT_SECRET,
        "HAOT_LOG_LEVEL": "INFO",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "haot.cli", "migrate"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr == ""
    *logged_lines, last = migrated.stdout.strip().splitlines()
    assert last == "migrated"
    records = json_lines("\n".join(logged_lines))
    upgrades = [r for r in records if r["event"].startswith("Running upgrade")]
    assert upgrades
    assert {(r["logger"], r["level"]) for r in upgrades} == {("alembic.runtime.migration", "info")}


logged = APIRouter(prefix="/probe/logged")


@logged.get("/me")
async def log_as_user() -> dict[str, str]:
    structlog.get_logger("probe").info("probe_structlog_line")
    logging.getLogger("probe.library").warning("probe_library_line")
    return {}


@logged.get("/me/authenticated")
async def log_as_authenticated_user(principal: CurrentUser) -> dict[str, str]:
    return await log_as_user()


@one_backend
async def test_a_request_logs_request_trace_and_user_ids_on_every_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_probe_app(settings.model_copy(update={"log_level": "INFO"}))
    app.include_router(logged)
    user_id = uuid.uuid4()
    async with serve(app) as client:
        auth = bearer(app, user_id=user_id)
        headers = {"x-request-id": REQUEST_ID, "traceparent": TRACEPARENT}
        answer = await client.get("/probe/logged/me/authenticated", headers=auth | headers)
        assert answer.status_code == 200, answer.text
        # The next request, without a token, carries no user id (nothing left over).
        anonymous = await client.get("/probe/logged/me", headers={"x-request-id": "anon-1"})
        assert anonymous.status_code == 200

    records = json_lines(capsys.readouterr().out)
    mine = [r for r in records if r.get("request_id") == REQUEST_ID]
    assert {r["event"] for r in mine} >= {"probe_structlog_line", "probe_library_line", "request"}
    for record in mine:
        assert record["trace_id"] == TRACE_ID, record
        assert record["user_id"] == str(user_id), record
        assert len(record["span_id"]) == 16, record
    assert len({r["span_id"] for r in mine}) == 1  # the request's own span, not the caller's
    assert mine[0]["span_id"] != "00f067aa0ba902b7"
    (library,) = [r for r in mine if r["event"] == "probe_library_line"]
    assert (library["logger"], library["level"]) == ("probe.library", "warning")

    anonymous_lines = [r for r in records if r.get("request_id") == "anon-1"]
    assert {r["event"] for r in anonymous_lines} >= {"probe_library_line", "request"}
    for record in anonymous_lines:
        assert "user_id" not in record, record
        assert record["trace_id"] != TRACE_ID


@one_backend
async def test_a_malformed_traceparent_starts_a_new_trace(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_probe_app(settings.model_copy(update={"log_level": "INFO"}))
    app.include_router(logged)
    async with serve(app) as client:
        for bad in (f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f0-01", "x"):
            response = await client.get(
                "/probe/logged/me", headers={"x-request-id": "bad-trace", "traceparent": bad}
            )
            assert response.status_code == 200
    records = [r for r in json_lines(capsys.readouterr().out) if r.get("request_id") == "bad-trace"]
    assert records
    for record in records:
        assert len(record["trace_id"]) == 32
        assert record["trace_id"].lower() != TRACE_ID
        assert int(record["trace_id"], 16)


def test_the_trace_context_is_sent_on_only_when_well_formed() -> None:
    structlog.contextvars.clear_contextvars()
    assert current_traceparent() is None
    with structlog.contextvars.bound_contextvars(trace_id=TRACE_ID, span_id="00f067aa0ba902b7"):
        assert current_traceparent() == TRACEPARENT
    with structlog.contextvars.bound_contextvars(trace_id="not-a-trace-id", span_id="0" * 16):
        assert current_traceparent() is None
    with trace_bound(TRACEPARENT) as trace_id:
        parent = current_traceparent()
        assert trace_id == TRACE_ID
        assert parent is not None
        assert parent.startswith(f"00-{TRACE_ID}-")
        assert parent != TRACEPARENT  # a span of its own
    with trace_bound("junk") as trace_id:
        assert trace_id_of(current_traceparent()) == trace_id != TRACE_ID
    assert current_traceparent() is None  # restored


def test_grafana_finds_the_trace_id_in_a_real_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The Loki data source's derived field (deploy/loki/grafana-datasource.yml) links a line to
    its trace by a regular expression over the raw line: it must find the id in what haot
    writes, structlog's lines and the standard library's alike."""
    import re

    import yaml

    source = Path(__file__).resolve().parents[2] / "deploy" / "loki" / "grafana-datasource.yml"
    (loki,) = yaml.safe_load(source.read_text())["datasources"]
    (derived,) = loki["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo"
    # Grafana's regular expressions are Go's (RE2); this one is in the common subset.
    pattern = re.compile(derived["matcherRegex"])
    configure_logging("INFO", json=True)
    with trace_bound(TRACEPARENT):
        structlog.get_logger("haot.test").info("a haot line")
        logging.getLogger("sqlalchemy.engine").warning("a library line")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        match = pattern.search(line)
        assert match is not None, line
        assert match.group(1) == TRACE_ID
