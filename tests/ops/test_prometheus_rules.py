"""deploy/prometheus: the configuration and rules pass ``promtool check``, the rules' unit tests
(deploy/prometheus/tests, ``promtool test rules``) pass and try every alert both ways, and the
rules name only metrics, labels and routes that the code exports, so that renaming one breaks
the build instead of silencing an alert.

promtool comes from Debian's package prometheus (scripts/ensure-debian-tool.sh, run by ``make
services``); without it the promtool tests skip, or fail under CI=true."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import iter_route_contexts
from prometheus_client import REGISTRY

import haot
from haot.app import create_app
from haot.bootstrap import direct_routes
from haot.platform.settings import CONTEXTS
from tests.conftest import make_settings
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"

# Labels every scraped series carries: Prometheus's own, and the targets' (prometheus.yml).
TARGET_LABELS = frozenset({"job", "instance", "deployment", "service", "component"})
# Series Prometheus makes itself, not the code.
PROMETHEUS_SERIES = frozenset({"up"})
SEVERITIES = frozenset({"critical", "warning"})


# promtool ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("HAOT_TEST_PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        unavailable(
            "promtool",
            f"{path} not found: install the Debian package prometheus "
            "(bash scripts/ensure-debian-tool.sh, run by make services)",
        )
    return path


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(
            f"promtool {' '.join(args)} exited {result.returncode}:\n{output}", pytrace=False
        )
    return output


def test_the_configuration_is_valid(promtool: str, tmp_path: Path) -> None:
    """The configuration as shipped, rule files included; the metrics token file is the
    deployment's (never committed), so a stand-in is put where the configuration expects it."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    token = copy / "secrets" / "haot-metrics-token"
    token.parent.mkdir(exist_ok=True)
    token.write_text("a-token-for-promtool\n")
    for config in ("prometheus.yml", "prometheus-all-in-one.yml"):
        output = run_promtool(promtool, "check", "config", config, cwd=copy)
        for rule_file in RULE_FILES:
            assert rule_file.name in output  # checked through rule_files, not left out


def test_the_rules_are_valid(promtool: str) -> None:
    assert RULE_FILES
    run_promtool(promtool, "check", "rules", *(str(p) for p in RULE_FILES), cwd=PROMETHEUS)


def test_the_rules_unit_tests_pass(promtool: str) -> None:
    assert TEST_FILES
    output = run_promtool(
        promtool,
        "test",
        "rules",
        *(str(p.relative_to(PROMETHEUS)) for p in TEST_FILES),
        cwd=PROMETHEUS,
    )
    assert output.count("SUCCESS") == len(TEST_FILES), output


# The rules as data -------------------------------------------------------------------------------


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            yield from group["rules"]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def recorded() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}


def test_every_alert_has_a_severity_a_summary_a_description_and_its_runbook() -> None:
    sections = runbook_sections()
    assert alerts()
    for name, alert in alerts().items():
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}", name
        assert name.lower() in sections, f"docs/operations.md has no section ### {name}"
    assert sections == {name.lower() for name in alerts()}, "a section for no alert"


def runbook_sections() -> set[str]:
    """The anchors (GitHub's) of the ### sections under ## Alerts in docs/operations.md."""
    text = OPERATIONS.read_text()
    start = text.index("\n## Alerts\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return {
        re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^### (.+)$", section, flags=re.MULTILINE)
    }


def test_every_alert_is_tried_where_it_fires_and_where_it_must_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                (fires if expected else silent).add(check["alertname"])
                for alert in expected:  # the labels and annotations it carries are checked
                    assert alert["exp_labels"]["severity"], (path.name, check["alertname"])
                    assert alert["exp_annotations"]["runbook_url"], (path.name, check["alertname"])
    assert set(alerts()) - fires == set(), "alerts never tried where they fire"
    assert set(alerts()) - silent == set(), "alerts never tried where they must stay silent"
    assert fires | silent <= set(alerts()), "tests of alerts that do not exist"


# What the rules name exists in the code -----------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    kind: str  # counter, gauge, histogram, summary
    labels: frozenset[str]  # as Prometheus stores them (target labels included)


def exported_series() -> dict[str, Exported]:
    """Every series name the code's metrics export, as a scrape shows it (``_total``,
    ``_bucket``...), with the labels Prometheus stores: the metric's own, a ``job`` or
    ``instance`` of its own renamed ``exported_job``/``exported_instance`` (the target's win),
    and the target labels."""
    for module in pkgutil.walk_packages(haot.__path__, "haot."):
        if module.name.endswith("__main__") or module.name.startswith("haot.migrations"):
            continue
        importlib.import_module(module.name)  # every metric is defined at import
    series: dict[str, Exported] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("haot_"):
            continue
        collector = REGISTRY._names_to_collectors[family.name]
        own = set(getattr(collector, "_labelnames", ()))
        stored = {f"exported_{n}" if n in TARGET_LABELS else n for n in own} | TARGET_LABELS
        suffixes = {
            "counter": ("_total",),
            "gauge": ("",),
            "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("", "_count", "_sum"),
        }[family.type]
        for suffix in suffixes:
            extra = (
                {"le"}
                if suffix == "_bucket"
                else {"quantile"}
                if family.type == "summary"
                else set()
            )
            series[family.name + suffix] = Exported(family.type, frozenset(stored | extra))
    return series


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


def selectors(expr: str) -> list[Selector]:
    """The series an expression selects: names of metrics (``haot_...``, ``up``) or recorded
    rules (``level:metric:operations``), with their label matchers."""
    found = []
    for match in _SELECTOR.finditer(expr):
        name, braces = match.group(1), match.group(2) or ""
        if not (name.startswith("haot_") or ":" in name or name in PROMETHEUS_SERIES):
            continue
        if _inside_string(expr, match.start()):
            continue
        found.append(Selector(name, tuple(_MATCHER.findall(braces))))
    return found


def _inside_string(expr: str, position: int) -> bool:
    return any(s.start() < position < s.end() for s in _STRING.finditer(expr))


def grouping_labels(expr: str) -> set[str]:
    stripped = _STRING.sub('""', expr)
    return {
        label.strip()
        for group in _GROUPING.findall(stripped)
        for label in group.split(",")
        if label.strip()
    }


def test_the_rules_name_only_metrics_and_labels_the_code_exports() -> None:
    series = exported_series()
    records = recorded()
    known: dict[str, frozenset[str]] = {name: e.labels for name, e in series.items()}
    known["up"] = TARGET_LABELS
    problems: list[str] = []
    # Recording rules in file order: each may use those before it.
    for record, expr in records.items():
        used = selectors(expr)
        for selector in used:
            if selector.name not in known:
                problems.append(f"{record}: {selector.name} is neither exported nor recorded")
        available = frozenset().union(*(known.get(s.name, frozenset()) for s in used))
        by = grouping_labels(expr)
        known[record] = frozenset(by) if by else available
    for name, alert in alerts().items():
        used = selectors(alert["expr"])
        assert used, f"{name}: selects no series"
        for selector in used:
            if selector.name not in known:
                problems.append(f"{name}: {selector.name} is neither exported nor recorded")
        available = frozenset().union(*(known.get(s.name, frozenset()) for s in used))
        for label in grouping_labels(alert["expr"]) - available:
            problems.append(f"{name}: groups by {label}, which none of its series carries")
    for owner, expr in [*records.items(), *((n, a["expr"]) for n, a in alerts().items())]:
        for selector in selectors(expr):
            labels = known.get(selector.name, frozenset())
            for label, _, _ in selector.matchers:
                if label not in labels:
                    problems.append(f"{owner}: {selector.name} has no label {label}")
    assert problems == []


def test_routes_named_by_the_rules_are_routes_of_the_app(tmp_path: Path) -> None:
    """The route label is the route's template (``RequestContextMiddleware``): every route of the
    all-in-one app, included routers' prefixes and the direct routes included."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'haot.db'}"))
    routes = {context.path for context in iter_route_contexts(app.routes)} | {
        route.path for route in direct_routes(CONTEXTS)
    }
    named = set()
    for expr in [*recorded().values(), *(a["expr"] for a in alerts().values())]:
        for selector in selectors(expr):
            for label, operator, value in selector.matchers:
                if label == "route":
                    named |= {value} if operator in ("=", "!=") else set(value.split("|"))
    assert named, "the rules name no route: the webhook alerts read one"
    assert named - routes == set()
