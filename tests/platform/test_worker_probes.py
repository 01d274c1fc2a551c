"""``haot worker --metrics-port`` (issue 16): the worker answers /healthz, /readyz and /metrics
(behind HAOT_METRICS_TOKEN) like a server, stops cleanly on SIGTERM, and refuses to start when
its port is taken instead of running unobserved. Over the Kafka broker, see
tests/e2e/test_worker_metrics.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from haot.platform.settings import TEST_JWT_SECRET
from tests.support.services import free_port, wait_until_healthy

TOKEN = "scrape-me-" + "x" * 24


def environment(database: Path, redis_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    return {
        **clean,
        "HAOT_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "HAOT_REDIS_URL": redis_url,
        "HAOT_JWT_SECRET": TEST_JWT_SECRET,
        "HAOT_METRICS_TOKEN": TOKEN,
        "HAOT_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def env(tmp_path: Path, redis_available: str) -> dict[str, str]:
    values = environment(tmp_path / "haot.db", redis_available)
    migrated = subprocess.run(
        [sys.executable, "-m", "haot.cli", "migrate"],
        env=values,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    return values


def start_worker(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "haot.cli", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    process = start_worker(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_the_worker_answers_its_probes_and_metrics_with_the_token(
    worker: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = worker
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"] == "ok"

    refused = httpx.get(f"{url}/metrics")
    assert refused.status_code == 401
    wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    # Measured at the scrape: the dependencies, and the outbox of the worker's database.
    assert 'haot_dependency_up{dependency="redis"} 1.0' in scraped.text
    assert "haot_outbox_backlog{" in scraped.text
    # Nothing else is served: no API, no docs.
    assert httpx.get(f"{url}/api/v1/lodgings").status_code == 404
    assert httpx.get(f"{url}/docs").status_code == 404


def test_sigterm_stops_the_worker_and_its_probes(
    worker: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = worker
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_taken_port_stops_the_worker_at_start(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = start_worker(env, taken.getsockname()[1])
        output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "address already in use" in output.lower(), output
