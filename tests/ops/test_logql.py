"""LogQL: every expression of deploy/ (the Loki ruler's alerts in deploy/loki/rules, the Loki
panels and variables of deploy/grafana/dashboards, Tempo's trace-to-logs query) parses with
Grafana's own LogQL grammar, is the kind its place needs (an alert and a graph a metric query, a
logs panel a log query), and names only stream labels Alloy sets and JSON fields and values that
haot's real log lines carry.

The parser is npm's @grafana/lezer-logql (the grammar of Grafana's Loki query editor) run by
tools/node/logql.cjs; it marks a syntax error by an error node, whose position is reported. The
log lines are captured from the app itself: the real ``create_app`` (with a route that crashes,
tests/platform's probe app) on SQLite and the embedded Redis, asked over ASGI for a sign-up, a
log-in, an authenticated read, a crash and a missing page, and a real consumer handed an event
that breaks its contract; every line it writes to stdout is kept.

Not checked here, for want of the binaries: Loki itself and Grafana Alloy. Neither is shipped by a
registry these machines reach (PyPI, Debian, npm: Debian's package ``loki`` is an unrelated
genetics program, and no PyPI or npm package carries Loki's or Alloy's binary), so Loki's own
parser, its ruler and Alloy's configuration are not run: the grammar here is Grafana's, which
follows Loki's, and Alloy's labels are read from its configuration file. Node tools missing: the
tests skip, or fail under CI=true (scripts/ensure-node-tools.sh, run by make services, installs
them).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from haot.platform.events import Event
from haot.platform.inbox import Consumer
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.conftest import in_thread, make_settings
from tests.ops.logql import (
    EMPTY_MARKER,
    LOKI,
    RULE_FILES,
    SAMPLE_TRACE_ID,
    LogQL,
    dashboard_expressions,
    every_expression,
    logql_checker,
    parse,
    rule_expressions,
    syntax_problems,
)
from tests.platform.conftest import build_probe_app, serve
from tests.support.contracts import Thing, envelope

ALLOY = LOKI / "alloy" / "config.alloy"
ROOT = Path(__file__).resolve().parents[2]
LOGS_DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "haot-logs.json"
# structlog's level names (its add_log_level: the method's name, "exception" as "error").
LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
# Labels Loki itself gives a line: a parser's failure, and its details.
LOKI_LABELS = frozenset({"__error__", "__error_details__"})
NUMERIC_OPS = frozenset({">", ">=", "<", "<="})
TRACEPARENT = f"00-{SAMPLE_TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def checker() -> list[str]:
    return logql_checker()


# The labels and the log lines ------------------------------------------------------------------


def alloy_labels() -> set[str]:
    """The stream labels Alloy's configuration gives a line: relabelled targets, the static
    labels of its Docker source, and the labels a processing stage makes."""
    alloy = ALLOY.read_text()
    labels = set(re.findall(r'target_label\s*=\s*"(\w+)"', alloy))
    labels |= set(re.findall(r"values\s*=\s*\{(\w+)\s*=", alloy))
    labels |= set(re.findall(r'labels\s*=\s*\{"(\w+)"', alloy))
    assert {"service", "format", "level"} <= labels, labels
    return labels


@pytest.fixture(scope="module")
def log_lines(sqlite_url: str) -> list[str]:
    """What the app writes to stdout while it serves a few requests (201, 200, 401, 404, 500)
    and a consumer parks a poison event: every line, as written."""
    settings = make_settings(sqlite_url, redis_url="", log_level="INFO")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        in_thread(asyncio.run, _drive(settings))
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert lines, "the app wrote nothing"
    return lines


async def _ignore(uow: UnitOfWork, event: Thing) -> None:
    raise AssertionError("a poison event is never applied")


async def _drive(settings: Settings) -> None:
    app = build_probe_app(settings)
    email = f"logql-{uuid.uuid4().hex[:8]}@example.com"
    password = "LogQL-Pass-4821"
    async with serve(app) as client:
        answer = await client.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": password, "name": "LogQL"},
            headers={"x-request-id": "logql-signup", "traceparent": TRACEPARENT},
        )
        assert answer.status_code == 201, answer.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
        assert (await client.get("/api/v1/users/me")).status_code == 401
        assert (await client.get("/api/v1/no-such-route")).status_code == 404
        crash = await client.get("/probe/crash", headers={"x-request-id": "logql-crash"})
        assert crash.status_code == 500
        # A consumer parks an event that does not decode into its contract.
        sessions = app.state.platform.databases.sessions_for("platform")
        reader = Consumer(f"logql.{uuid.uuid4().hex[:8]}", UnitOfWorkFactory(sessions))
        good = envelope(Thing, "logql", seq=1)
        bad = Event(
            type=good.type,
            aggregate_id=good.aggregate_id,
            payload={**good.payload, "seq": "not a number"},
            trace_parent=TRACEPARENT,
        )
        # In a task of its own, as a worker's consumer runs: over ASGITransport the requests
        # above ran in this task, and their log context would otherwise stay bound here.
        parked = reader.on(Thing, _ignore).handle_batch([bad])
        await asyncio.get_running_loop().create_task(parked, context=contextvars.Context())


@pytest.fixture(scope="module")
def records(log_lines: list[str]) -> list[dict[str, Any]]:
    """The lines as Loki's ``| json`` reads them: every one a JSON object."""
    parsed = []
    for line in log_lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def test_the_captured_lines_are_the_apps_access_error_and_consumer_lines(
    records: list[dict[str, Any]],
) -> None:
    events = {r["event"] for r in records}
    assert {"request", "unhandled_error", "consumer_event_poison"} <= events, events
    assert {r["level"] for r in records} <= LEVELS
    requests = [r for r in records if r["event"] == "request"]
    assert {r["status"] for r in requests} >= {200, 201, 401, 404, 500}
    (signup,) = [r for r in requests if r.get("request_id") == "logql-signup"]
    assert signup["trace_id"] == SAMPLE_TRACE_ID
    (crashed,) = [r for r in requests if r["status"] == 500]
    assert crashed["level"] == "error"
    (poison,) = [r for r in records if r["event"] == "consumer_event_poison"]
    assert poison["level"] == "error"
    assert poison["trace_id"] == SAMPLE_TRACE_ID
    assert {"consumer", "event_type"} <= poison.keys()
    assert "request_id" not in poison, "a consumer serves no request"


# Syntax ----------------------------------------------------------------------------------------


def test_every_logql_expression_parses_and_is_the_kind_its_place_needs(
    checker: list[str],
) -> None:
    queries = every_expression()
    for path in RULE_FILES:
        assert any(q.where.startswith(str(path.relative_to(ROOT))) for q in queries), path
    assert len([q for q in queries if q.where.startswith("haot-logs.json / panel")]) >= 8
    results = parse(checker, queries)
    problems = syntax_problems(queries, results)
    assert not problems, "\n".join(problems)


def test_the_parser_fails_broken_rules_and_panels(checker: list[str], tmp_path: Path) -> None:
    """Copies of the rules and of the logs dashboard with defects put in: each is reported, with
    the position of the error."""
    rules = yaml.safe_load(RULE_FILES[0].read_text())
    group = rules["groups"][0]
    errors_rule, dead_letters = group["rules"][0]["expr"], group["rules"][1]["expr"]
    broken = {
        "Misspelt": errors_rule.replace("count_over_time(", "count_over_tim(", 1),
        "NoParser": dead_letters.replace("| json", "| jsn", 1),
        "Unclosed": errors_rule.rsplit(")", 1)[0] + " > 0",
    }
    group["rules"] = [
        {**group["rules"][0], "alert": name, "expr": expr} for name, expr in broken.items()
    ]
    rule_copy = tmp_path / "rules.yaml"
    rule_copy.write_text(yaml.safe_dump(rules))

    board = json.loads(LOGS_DASHBOARD.read_text())
    panels = {panel["title"]: panel for panel in board["panels"]}
    target = panels["Error lines"]["targets"][0]
    target["expr"] = target["expr"].replace("}", "", 1)  # the selector left open
    graph = panels["Error lines per service"]["targets"][0]
    graph["expr"] = '{format="json", level="error"}'  # a log query in a graph
    dashboard_copy = tmp_path / "haot-logs.json"
    dashboard_copy.write_text(json.dumps(board))

    queries = rule_expressions([rule_copy]) + dashboard_expressions([dashboard_copy])
    results = parse(checker, queries)
    found = {q.where.rsplit(": ", 1)[-1]: r for q, r in zip(queries, results, strict=True)}
    for name, expr in broken.items():
        assert found[name]["errors"], f"{name} not reported: {expr}"
    misspelt = found["Misspelt"]["errors"][0]
    assert broken["Misspelt"][misspelt["from"] : misspelt["to"]] == "count_over_tim"
    assert any("jsn" in error["near"] for error in found["NoParser"]["errors"])
    assert found["Unclosed"]["errors"][0]["from"] >= len(broken["Unclosed"]) - len(" > 0")
    problems = syntax_problems(queries, results)
    assert any("'Error lines' / A: syntax error at line 1" in p for p in problems), problems
    assert any(
        "'Error lines per service' / A: a log query where a metric one is" in p for p in problems
    ), problems


# Labels, fields and values ---------------------------------------------------------------------


def field_problems(
    queries: list[LogQL],
    results: list[dict[str, Any]],
    lines: list[str],
    records: list[dict[str, Any]],
) -> list[str]:
    """What a query names that no real line has: a stream label Alloy never sets, a level
    structlog never writes, a JSON field no line carries (or not as a number where the query
    compares or unwraps one), an exact value or a line filter's text that no line holds."""
    stream = alloy_labels()
    keys = {key for record in records for key in record}
    problems = []

    def from_a_variable(value: str) -> bool:
        return value == SAMPLE_TRACE_ID or value.startswith(EMPTY_MARKER.split("{")[0])

    def numeric(name: str) -> bool:
        values = [r[name] for r in records if name in r]
        return bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )

    for query, result in zip(queries, results, strict=True):
        where = query.where
        for matcher in result["selectors"]:
            name, op, value = matcher["name"], matcher["op"], matcher["value"]
            if name not in stream:
                problems.append(f"{where}: stream label {name} is never set by Alloy")
            elif name == "level" and op in ("=", "=~") and value != ".*":
                for level in value.split("|") if op == "=~" else [value]:
                    if level not in LEVELS:
                        problems.append(f"{where}: level {level!r} is not a level haot logs")
        known = stream | LOKI_LABELS
        if "json" in result["parsers"]:
            # A field named like a stream label is renamed <name>_extracted by | json.
            known |= keys | {f"{key}_extracted" for key in keys & stream}
        for other in set(result["parsers"]) - {"json"}:
            problems.append(f"{where}: the {other} parser on haot's JSON lines")
        for matcher in result["filters"]:
            name, op, value = matcher["name"], matcher["op"], matcher["value"]
            if name not in known:
                problems.append(f"{where}: no line has the field {name}")
            elif op in NUMERIC_OPS and not numeric(name):
                problems.append(f"{where}: {name} is compared as a number, but is not one")
            elif (
                op == "="
                and name in keys - stream
                and value
                and not from_a_variable(value)
                and not any(str(r.get(name)) == value for r in records)
            ):
                problems.append(f"{where}: no line has {name}={value!r}")
        for name in result["unwrapped"]:
            if name not in known:
                problems.append(f"{where}: unwraps {name}, which no line has")
            elif not numeric(name):
                problems.append(f"{where}: unwraps {name}, which is not a number")
        for name in result["grouping"]:
            if name not in known:
                problems.append(f"{where}: groups by {name}, which no line or stream has")
        for template in result["formats"]:
            for name in re.findall(r"\{\{[^}]*?\.(\w+)", template):
                if name not in known:
                    problems.append(f"{where}: formats {name}, which no line has")
        for line_filter in result["line_filters"]:
            text = line_filter["value"]
            literal = line_filter["op"] == "|=" and text and not from_a_variable(text)
            if literal and not any(text in line for line in lines):
                problems.append(f"{where}: no line contains {text!r}")
    return problems


def test_every_label_field_and_value_the_logql_names_is_in_real_log_lines(
    checker: list[str], log_lines: list[str], records: list[dict[str, Any]]
) -> None:
    queries = every_expression()
    problems = field_problems(queries, parse(checker, queries), log_lines, records)
    assert not problems, "\n".join(problems)


def test_the_field_check_fails_names_no_line_has(
    checker: list[str], log_lines: list[str], records: list[dict[str, Any]]
) -> None:
    defects = {
        "stream label": '{format="json", container="x"} | json',
        "level": '{format="json", level=~"error|fatal"}',
        "field": '{format="json"} | json | evnt="request"',
        "value": '{format="json"} | json | event="requests"',
        "number": '{format="json"} | json | route > 5',
        "unwrap": (
            'max_over_time({format="json"} | json | event="request" | unwrap duration [1m])'
        ),
        "grouping": 'sum by (consumr) (count_over_time({format="json"} | json [1m]))',
        "line filter": '{format="json"} |= "consumer_event_poisoned" | json',
        "format": '{format="json"} | json | line_format "{{.route}} {{.statuscode}}"',
        "parser": '{format="json"} | logfmt',
    }
    queries = [LogQL(name, expr, expr) for name, expr in defects.items()]
    problems = field_problems(queries, parse(checker, queries), log_lines, records)
    for name in defects:
        assert any(p.startswith(f"{name}: ") for p in problems), (name, problems)
    assert len(problems) == len(defects), problems
