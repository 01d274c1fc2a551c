"""The deployments the end-to-end flows run against, each started once for the session.

``deployment`` is parametrized by deployment name: the all-in-one server, and the split one
behind its gateway; each is a session fixture (started in a directory of its own for its logs),
so the fault tests share the split with the flows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.deployment import Deployment, all_in_one, split

# Each deployment by name: the session fixture that starts it once.
STARTERS = {"all-in-one": "all_in_one_deployment", "split": "split_deployment"}


@pytest.fixture(scope="session")
def all_in_one_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with all_in_one(tmp_path_factory.mktemp("e2e-all-in-one")) as running:
        yield running


@pytest.fixture(scope="session")
def split_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Shared by the flows and the fault tests (which restart what they kill)."""
    with split(tmp_path_factory.mktemp("e2e-split")) as running:
        yield running


@pytest.fixture(params=list(STARTERS))
def deployment(request: pytest.FixtureRequest) -> Deployment:
    running: Deployment = request.getfixturevalue(STARTERS[request.param])
    return running
