"""Every LogQL expression of deploy/: the Loki ruler's alert rules (deploy/loki/rules), the panels
and variables of the dashboards on the Loki data source (deploy/grafana/dashboards), and the
trace-to-logs query of a Grafana data source (deploy/grafana/provisioning/datasources); and how
they are parsed: with Grafana's own LogQL grammar, through tools/node/logql.cjs.

Grafana replaces its variables before a query reaches Loki; here they become what Grafana would
send: its interval and range variables a duration, a variable with "All" its ``allValue``, a text
box its default, and an empty text box a marker string (valid only where a string is, as
Grafana's empty value would be)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.node_tools import node_script, run

ROOT = Path(__file__).resolve().parents[2]
LOKI = ROOT / "deploy" / "loki"
RULE_FILES = sorted((LOKI / "rules").glob("*/*.y*ml"))
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = sorted((GRAFANA / "provisioning" / "datasources").glob("*.y*ml"))
LOKI_DATASOURCE = LOKI / "grafana-datasource.yml"

# Grafana's built-in variables, as durations.
BUILT_INS = {
    "__interval": "1m",
    "__auto": "1m",
    "__rate_interval": "1m",
    "__range": "1h",
}
# What an empty text box becomes: a string no log line holds.
EMPTY_MARKER = "__empty_textbox_{name}__"
# A Tempo span's trace id in a data source's trace-to-logs query.
SAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass(frozen=True)
class LogQL:
    where: str
    raw: str  # as written in the file
    expr: str  # as Loki would get it
    kind: str | None = None  # "metric" or "log" when the place demands one


def loki_uid() -> str:
    (source,) = yaml.safe_load(LOKI_DATASOURCE.read_text())["datasources"]
    assert source["type"] == "loki", source
    uid: str = source["uid"]
    return uid


def is_loki(datasource: Any) -> bool:
    return isinstance(datasource, dict) and datasource.get("type") == "loki"


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def substitute(expr: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in BUILT_INS:
            return BUILT_INS[name]
        assert name in variables, f"${name} is not a variable of its dashboard"
        return variables[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", value, expr)


def dashboard_variables(board: dict[str, Any]) -> dict[str, str]:
    values = {}
    for variable in board.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("includeAll"):
            values[name] = variable.get("allValue") or ".*"
        elif variable["type"] == "textbox":
            values[name] = str(variable.get("query") or "") or EMPTY_MARKER.format(name=name)
        else:
            current = variable.get("current", {}).get("value", "")
            values[name] = current[0] if isinstance(current, list) else str(current)
    return values


def rule_expressions(files: list[Path] = RULE_FILES) -> list[LogQL]:
    found = []
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                place = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                where = f"{place}: {name}"
                found.append(LogQL(where, rule["expr"], rule["expr"], "metric"))
    return found


def loki_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in all_panels(board):
        if is_loki(panel.get("datasource")):
            yield panel


def dashboard_expressions(files: list[Path] = DASHBOARDS) -> list[LogQL]:
    """Every query of a panel on the Loki data source, and every Loki variable's stream."""
    found = []
    for path in files:
        board = json.loads(path.read_text())
        variables = dashboard_variables(board)
        for panel in loki_panels(board):
            kind = "log" if panel["type"] == "logs" else "metric"
            for target in panel.get("targets", []):
                where = f"{path.name} / panel {panel['title']!r} / {target['refId']}"
                raw = target["expr"]
                found.append(LogQL(where, raw, substitute(raw, variables), kind))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query" and is_loki(variable.get("datasource")):
                stream = variable["query"]["stream"]
                where = f"{path.name} / variable ${variable['name']}"
                found.append(LogQL(where, stream, substitute(stream, variables), "log"))
    return found


def datasource_expressions(files: list[Path] = DATASOURCES) -> list[LogQL]:
    """The LogQL a data source runs for another's item: Tempo's "Logs for this span"."""
    found = []
    for path in files:
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            logs = source.get("jsonData", {}).get("tracesToLogsV2", {})
            if logs.get("customQuery") and logs.get("query"):
                raw = logs["query"]
                # $$ is how a provisioning file writes a $ that Grafana must not expand.
                expr = raw.replace("$$", "$").replace("${__trace.traceId}", SAMPLE_TRACE_ID)
                expr = expr.replace("${__span.spanId}", SAMPLE_TRACE_ID[:16])
                found.append(LogQL(f"{path.name}: {source['name']} traces to logs", raw, expr))
    return found


def every_expression() -> list[LogQL]:
    return [*rule_expressions(), *dashboard_expressions(), *datasource_expressions()]


def logql_checker() -> list[str]:
    return node_script("logql.cjs", "@grafana/lezer-logql")


def parse(checker: list[str], queries: list[LogQL]) -> list[dict[str, Any]]:
    """What tools/node/logql.cjs says of each query (errors, kind, the labels and fields it
    names), in order."""
    code, out, err = run(checker, json.dumps([q.expr for q in queries]))
    if code not in (0, 1):
        pytest.fail(f"logql.cjs exited {code}: {err}", pytrace=False)
    results: list[dict[str, Any]] = json.loads(out)
    assert len(results) == len(queries)
    return results


def syntax_problems(queries: list[LogQL], results: list[dict[str, Any]]) -> list[str]:
    problems = []
    for query, result in zip(queries, results, strict=True):
        for error in result["errors"]:
            problems.append(
                f"{query.where}: syntax error at line {error['line']}, column {error['column']}"
                f" (near {error['near']!r}) in\n    {query.expr}"
            )
        if query.kind and result["kind"] != query.kind:
            problems.append(f"{query.where}: a {result['kind']} query where a {query.kind} one is")
    return problems
