"""Alertmanager's configuration (deploy/compose/alertmanager/alertmanager.yml), checked by
Alertmanager's own amtool: ``amtool check-config``, and ``amtool config routes test`` for every
alert of deploy/prometheus/rules and deploy/loki/rules with its own labels, each of which must
reach the receiver docs/deploy.md names (``default``: the one receiver, which sends nothing
until an operator adds a notifier to it), a critical alert through the route that repeats it
every hour, a warning through the root route (every four hours).

amtool comes from Debian's package prometheus-alertmanager (scripts/ensure-debian-tool.sh, run
by make services, installs it without starting the package's service); without it the tests
skip, or fail under CI=true. Each check is also shown failing on a broken copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "compose" / "alertmanager" / "alertmanager.yml"
ALERT_FILES = [
    *sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")),
    *sorted((ROOT / "deploy" / "loki" / "rules").glob("*/*.y*ml")),
]
RECEIVER = "default"
# The route each severity must end on: amtool's name of it in its --tree output.
ROUTE_OF = {"critical": '{severity="critical"}', "warning": "default-route"}
REPEAT_OF = {"critical": "1h", "warning": "4h"}


@dataclass(frozen=True)
class Alert:
    where: str
    labels: dict[str, str]

    def args(self) -> list[str]:
        return [f"{name}={value}" for name, value in self.labels.items()]


@pytest.fixture(scope="module")
def amtool() -> str:
    path = os.environ.get("HAOT_TEST_AMTOOL") or shutil.which("amtool")
    if path is None:
        unavailable(
            "amtool",
            "not installed: the Debian package prometheus-alertmanager "
            "(bash scripts/ensure-debian-tool.sh, run by make services)",
        )
    assert path is not None
    return path


def run(argv: list[str]) -> tuple[int, str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return result.returncode, result.stdout + result.stderr


def alerts() -> list[Alert]:
    found = []
    for path in ALERT_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels = {"alertname": rule["alert"], **rule.get("labels", {})}
                    found.append(Alert(f"{path.relative_to(ROOT)}: {rule['alert']}", labels))
    return found


def matched_route(amtool: str, config: Path, alert: Alert) -> tuple[str, str]:
    """The route of ``config`` that ``alert`` ends on, and its receiver, as amtool tells."""
    code, output = run(
        [amtool, "config", "routes", "test", f"--config.file={config}", "--tree", *alert.args()]
    )
    assert code == 0, f"{alert.where}: amtool exited {code}:\n{output}"
    leaves = re.findall(r"└── (.+?)\s+receiver: (\S+)", output)
    assert leaves, f"{alert.where}: no matching route in\n{output}"
    route, receiver = leaves[-1]
    return route.strip(), receiver


def routing_problems(amtool: str, config: Path) -> list[str]:
    problems = []
    routes = {
        ROUTE_OF["warning"]: yaml.safe_load(config.read_text())["route"],
        **{
            f"{{{', '.join(child.get('matchers', []))}}}": child
            for child in yaml.safe_load(config.read_text())["route"].get("routes", [])
        },
    }
    root = routes[ROUTE_OF["warning"]]
    for alert in alerts():
        severity = alert.labels["severity"]
        route, receiver = matched_route(amtool, config, alert)
        if (route, receiver) != (ROUTE_OF[severity], RECEIVER):
            problems.append(
                f"{alert.where} ({severity}) ends on {route} -> {receiver}, "
                f"not {ROUTE_OF[severity]} -> {RECEIVER}"
            )
            continue
        repeat = routes.get(route, {}).get("repeat_interval", root.get("repeat_interval"))
        if repeat != REPEAT_OF[severity]:
            problems.append(f"{alert.where} ({severity}) repeats every {repeat}")
        code, output = run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                f"--verify.receivers={RECEIVER}",
                *alert.args(),
            ]
        )
        if code != 0:
            problems.append(f"{alert.where}: amtool --verify.receivers={RECEIVER}: {output}")
    return problems


def test_the_configuration_passes_amtool_check_config(amtool: str) -> None:
    code, output = run([amtool, "check-config", str(CONFIG)])
    assert code == 0, output
    assert "SUCCESS" in output, output


def test_every_alert_reaches_the_documented_receiver_by_its_severity(amtool: str) -> None:
    found = alerts()
    severities = {alert.labels["severity"] for alert in found}
    assert severities == set(ROUTE_OF), severities
    assert any("loki" in alert.where for alert in found), "the Loki ruler's alerts too"
    problems = routing_problems(amtool, CONFIG)
    assert not problems, "\n".join(problems)


def test_the_docs_name_the_receiver() -> None:
    deploy = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert "no receiver until you add one in `alertmanager/alertmanager.yml`" in deploy
    assert f"the receiver `{RECEIVER}`" in deploy
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    assert [r["name"] for r in config["receivers"]] == [RECEIVER]


def test_amtool_fails_a_broken_configuration(amtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"][0]["receiver"] = "pager"  # never defined
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    code, output = run([amtool, "check-config", str(broken)])
    assert code != 0, output
    assert 'undefined receiver "pager"' in output, output


def test_the_routing_check_fails_a_misrouted_copy(amtool: str, tmp_path: Path) -> None:
    """A critical route that no longer matches (critical alerts fall to the root route), then
    one that sends them to another receiver: both are caught."""
    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"][0]["matchers"] = ['severity="crit"']
    misspelt = tmp_path / "misspelt.yml"
    misspelt.write_text(yaml.safe_dump(config))
    problems = routing_problems(amtool, misspelt)
    critical = [a for a in alerts() if a.labels["severity"] == "critical"]
    assert len(problems) == len(critical), problems
    assert all('ends on default-route -> default, not {severity="critical"}' in p for p in problems)

    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"][0]["receiver"] = "pager"
    config["receivers"].append({"name": "pager"})
    elsewhere = tmp_path / "elsewhere.yml"
    elsewhere.write_text(yaml.safe_dump(config))
    code, output = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={elsewhere}",
            f"--verify.receivers={RECEIVER}",
            *critical[0].args(),
        ]
    )
    assert code != 0, output
    assert len(routing_problems(amtool, elsewhere)) == len(critical)
