"""Reaching the real backends. Absent service: skip with a reason, except under CI=true, where
the suite must fail instead (a green CI must mean the real thing was exercised)."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

POSTGRES_ADMIN_URL = os.environ.get(
    "HAOT_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HAOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(service: str, reason: str) -> None:
    message = f"{service} unavailable: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing backend fails the suite)", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(
    process: subprocess.Popen[str], base_url: str, *, within: float = 60
) -> None:
    """Until ``base_url``'s ``/healthz`` answers 200; fails with the process's output if it exits
    first, or once ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base_url}/healthz never answered"
        time.sleep(0.1)
