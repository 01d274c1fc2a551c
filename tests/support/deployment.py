"""A running haot deployment as the end-to-end flows (``tests/e2e``) see it: a base URL and a
name, nothing else. The flows reach it only over HTTP, as outside users do, so the same flows run
against any deployment that serves the public paths (SPEC: API outline, fake PortOne).

``all_in_one`` starts the all-in-one one: a real ``haot serve`` process (``python -m haot.cli``)
on its own fresh PostgreSQL database and its own ``redis-server``, migrated and seeded through the
command line, configured only through the ``HAOT_*`` variables set here (none inherited).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from haot.local_split import exit_with_parent
from tests.support.services import POSTGRES_ADMIN_URL, free_port, port_open, unavailable

if TYPE_CHECKING:
    from haot.local_split import LocalSplit

READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0
COMMAND_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Deployment:
    """Where a running deployment answers (``base_url``, no trailing slash: the API is under
    ``{base_url}/api/v1``) and what to call it in test ids and messages (``name``)."""

    base_url: str
    name: str
    # The split's processes (to kill and restart in fault tests); None for all-in-one.
    split: LocalSplit | None = None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after the grace period."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE_SECONDS)


def _off_the_loop(coroutine: object) -> None:
    """``asyncio.run`` in a thread of its own: the test session's event loop stays untouched."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


async def _postgres(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database (``haot_e2e_<random>``), dropped WITH (FORCE) afterwards: its
    SQLAlchemy URL."""
    name = f"haot_e2e_{uuid.uuid4().hex[:10]}"
    try:
        _off_the_loop(_postgres(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", f"{POSTGRES_ADMIN_URL}: {exc}")
    server = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{server}/{name}"
    finally:
        _off_the_loop(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A ``redis-server`` of its own on a free loopback port, nothing persisted: its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", "not installed (no redis-server on PATH)")
        raise AssertionError("unreachable")
    port = free_port()
    log_path = directory / "redis.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(binary, "--bind", "127.0.0.1", "--port", str(port)),
                *("--save", "", "--appendonly", "no", "--dir", str(directory)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=exit_with_parent,  # an interrupted session leaves nothing behind
        )
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable("redis-server", f"{binary} did not start: {_tail(log_path)}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


def _haot_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``HAOT_*`` variable, plus ``settings``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    clean.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return clean | settings


def _haot(*args: str) -> list[str]:
    return [sys.executable, "-m", "haot.cli", *args]


def _run(args: list[str], env: dict[str, str], directory: Path) -> None:
    """A ``haot`` command to completion; failing is the product failing (never a skip)."""
    done = subprocess.run(
        args,
        env=env,
        cwd=directory,  # no stray .env file is read from the working directory
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(args[2:])} exited with {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
            pytrace=False,
        )


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer yet"
    with httpx.Client(timeout=2) as client:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"haot serve exited with {process.returncode} before it was ready; "
                    f"log tail:\n{_tail(log_path)}",
                    pytrace=False,
                )
            try:
                answer = client.get(f"{base_url}/readyz")
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:500]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"haot serve not ready after {READY_TIMEOUT_SECONDS:.0f}s (last /readyz: "
                    f"{last}); log tail:\n{_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, directory: Path) -> Iterator[None]:
    """``haot serve`` on 127.0.0.1:``port`` until the block ends; its log in ``haot.log``."""
    log_path = directory / "haot.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            _haot("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=env,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=exit_with_parent,
        )
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}", log_path)
        yield
    finally:
        _stop(process)


@contextlib.contextmanager
def all_in_one(directory: Path) -> Iterator[Deployment]:
    """The all-in-one deployment (every context, the pages and the built-in fake PortOne in one
    ``haot serve`` process, its workers in-process), on its own database and Redis, seeded with
    the demo accounts. Skipped (failed under CI=true) when PostgreSQL or redis-server is
    missing; a product that does not migrate, seed or become ready fails."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_database())
        redis_url = stack.enter_context(redis_server(directory))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = _haot_environment(
            {
                "HAOT_ENV": "development",  # fake PortOne at /fake-portone; jobs take as_of
                "HAOT_DATABASE_URL": database_url,
                "HAOT_REDIS_URL": redis_url,
                "HAOT_JWT_SECRET": secrets.token_urlsafe(36),  # 48 characters
                "HAOT_PUBLIC_BASE_URL": base_url,
            }
        )
        _run(_haot("migrate"), env, directory)
        _run(_haot("seed"), env, directory)
        stack.enter_context(serving(env, port, directory))
        yield Deployment(base_url=base_url, name="all-in-one")


@contextlib.contextmanager
def split(directory: Path) -> Iterator[Deployment]:
    """The split deployment of ``make split`` (every context its own process and PostgreSQL
    database, workers, tansu on a local S3 server, Redis, nginx), on free ports and databases
    of its own, dropped after. Skipped (failed under CI=true) when PostgreSQL, redis-server or
    nginx is missing; a part that does not come up fails."""
    from haot.local_split import SERVED, LocalSplit, SplitLayout, drop_databases
    from haot.platform.settings import CONTEXTS

    for binary in ("redis-server", "nginx"):
        if not (shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists()):
            unavailable(binary, "not installed (make services installs it)")
    if not port_open("127.0.0.1", 5432):
        unavailable("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    layout = SplitLayout(
        root=directory,
        gateway_port=free_port(),
        broker_port=free_port(),
        redis_port=free_port(),
        object_store_port=free_port(),
        service_ports={name: free_port() for name in SERVED}
        | {f"{context}-worker": free_port() for context in CONTEXTS},
        database_prefix=f"haot_e2e_split_{secrets.token_hex(4)}_",
        # The flows sign up and log in some fifty guests from one address within a minute; the
        # suite's own connections share the PostgreSQL server.
        extra_environment={
            "HAOT_LOGIN_IP_RATE_PER_MINUTE": "10000",
            "HAOT_DATABASE_POOL_SIZE": "3",
        },
        die_with_starter=True,
    )
    running = LocalSplit(layout)
    try:
        running.start()
        yield Deployment(base_url=layout.gateway_url, name="split", split=running)
    finally:
        running.stop()
        _off_the_loop(drop_databases(layout))
