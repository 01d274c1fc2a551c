"""A context talks to another only through that context's public interface: its ``client``
module (the Protocol, its errors and rules) and its ``events`` contracts. It never imports another
context's models, repository, service or domain (ARCHITECTURE.md; issue 11, item 14)."""

from __future__ import annotations

import ast
from pathlib import Path

import haot

CONTEXTS = ("identity", "lodging", "payment", "point", "coupon", "reservation")
PUBLIC = ("client", "events")
SOURCE = Path(haot.__file__).parent


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # ``from haot.lodging import events`` names the module in the alias
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def crossings(context: str) -> list[str]:
    found = []
    for path in sorted((SOURCE / context).rglob("*.py")):
        for name in imported_modules(path):
            parts = name.split(".")
            if len(parts) < 2 or parts[0] != "haot" or parts[1] not in CONTEXTS:
                continue
            if parts[1] == context:
                continue
            if len(parts) == 2:  # ``from haot.lodging import client``: judged by the alias
                continue
            if parts[2] not in PUBLIC:
                found.append(f"{path.relative_to(SOURCE)}: {name}")
    return found


def test_contexts_import_each_other_only_through_client_and_events() -> None:
    assert {context: crossings(context) for context in CONTEXTS} == {c: [] for c in CONTEXTS}


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """The check itself: a forbidden import is found."""
    module = tmp_path / "m.py"
    module.write_text("from haot.lodging.domain import stay_problem\nimport haot.point.models\n")
    assert imported_modules(module) == [
        "haot.lodging.domain",
        "haot.lodging.domain.stay_problem",
        "haot.point.models",
    ]
