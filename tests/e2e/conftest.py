"""The deployments the end-to-end flows run against, each started once for the session.

``deployment`` is parametrized by deployment name; each name maps to a context manager that
starts that deployment (in a directory of its own for its logs) and yields its ``Deployment``.
Another deployment (the split one behind its gateway) is one more entry in ``STARTERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support.deployment import Deployment, all_in_one, split

STARTERS: dict[str, Callable[[Path], AbstractContextManager[Deployment]]] = {
    "all-in-one": all_in_one,
    "split": split,
}


@pytest.fixture(scope="session", params=list(STARTERS))
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    name: str = request.param
    with STARTERS[name](tmp_path_factory.mktemp(f"e2e-{name}")) as running:
        yield running
