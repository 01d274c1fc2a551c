"""The mechanics of ``make bench``: its configuration, the tools it installs, the databases it
owns, the servers it starts and stops, and one wrk run measured with the servers' CPU time."""

# ruff: noqa: S603, S607 (a benchmark runs tools: wrk, py-spy, haot, uvicorn)
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
POSTGRES_ADMIN_URL = os.environ.get(
    "HAOT_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_BASE = os.environ.get("HAOT_BENCH_REDIS", "redis://127.0.0.1:6379")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


WORKERS = env_int("BENCH_WORKERS", 2)
DURATION = env_int("BENCH_DURATION", 12)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 64)
THREADS = env_int("BENCH_THREADS", 2)
QUANTITY = env_int("BENCH_QUANTITY", 1000)
USERS = env_int("BENCH_USERS", 20_000)
PROFILE = env_int("BENCH_PROFILE", 1) == 1
LODGINGS = env_int("BENCH_LODGINGS", 10_000)
NIGHTS = env_int("BENCH_NIGHTS", 365)
GUESTS = env_int("BENCH_GUESTS", 5_000)
BOOKED_ROOM_TYPES = env_int("BENCH_BOOKED_ROOM_TYPES", 5_000)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Tools ------------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk missing: apt-get install -y wrk")
    if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not available (apt-get install -y wrk failed)")
    return found


def ensure_py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    if not candidate.exists():
        log("py-spy missing: pip install py-spy")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=False)
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


# Backends ---------------------------------------------------------------------------------------


@dataclass
class Backends:
    """The Redis database and PostgreSQL database this run owns."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    redis_db: int | None = None
    database: str | None = None

    @property
    def redis_url(self) -> str:
        return f"{REDIS_BASE}/{self.redis_db}"

    @property
    def database_url(self) -> str:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        return f"{base}/{self.database}"

    @property
    def database_dsn(self) -> str:
        return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{self.database}"

    def claim_redis(self) -> None:
        """The same lock the test sessions take (``haot:test-session:db<n>`` in db 0), so a
        concurrent ``make test`` never flushes the database under the benchmark."""
        client = redis.Redis.from_url(f"{REDIS_BASE}/0", socket_connect_timeout=2)
        try:
            for number in range(1, 16):
                if client.set(f"haot:test-session:db{number}", self.token, nx=True, ex=3600):
                    self.redis_db = number
                    break
        finally:
            client.close()
        if self.redis_db is None:
            raise SystemExit("no free Redis database (1-15) for the benchmark")
        redis.Redis.from_url(self.redis_url).flushdb()

    def release_redis(self) -> None:
        if self.redis_db is None:
            return
        with contextlib.suppress(Exception):
            redis.Redis.from_url(self.redis_url).flushdb()
        client = redis.Redis.from_url(f"{REDIS_BASE}/0")
        try:
            key = f"haot:test-session:db{self.redis_db}"
            if client.get(key) == self.token.encode():
                client.delete(key)
        finally:
            client.close()

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self) -> None:
        self.database = f"haot_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(self._admin(f'CREATE DATABASE "{self.database}"'))

    def drop_database(self) -> None:
        if self.database:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))


# The server -------------------------------------------------------------------------------------


@dataclass
class Server:
    """A server started as its own process group: ``haot serve`` or the raw ceilings."""

    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    ready_path: str = "/readyz"
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def haot(cls, env: dict[str, str], port: int, log_path: Path) -> Server:
        command = [sys.executable, "-m", "haot.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(WORKERS)]
        return cls(command, env, port, log_path)

    @classmethod
    def ceilings(cls, env: dict[str, str], port: int, log_path: Path) -> Server:
        """The raw ceilings on the same server software haot uses (``bench/ceilings.py``)."""
        command = [sys.executable, "-m", "uvicorn", "bench.ceilings:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(WORKERS), "--log-level", "warning"]
        command += ["--no-access-log"]
        return cls(command, env, port, log_path, ready_path="/json")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one below
            )
        # haot loads its offer index before it serves (tens of seconds at catalogue scale).
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + self.ready_path, timeout=1).status_code == 200:
                    # Every worker up: each answers only once its lifespan ran.
                    time.sleep(1.5)
                    return
            time.sleep(0.2)
        raise SystemExit(f"server not ready in 240 s: {self.tail()}")

    def workers(self) -> list[int]:
        """Process ids of the worker processes (children of the server process)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
                # uvicorn spawns its workers (multiprocessing), granian forks them: either way
                # they are the server's children, besides multiprocessing's resource tracker.
                if ppid == self.process.pid and b"resource_tracker" not in cmdline:
                    found.append(int(entry.name))
        return sorted(found)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# Load -------------------------------------------------------------------------------------------


def wrk(
    binary: str,
    url: str,
    *,
    method: str = "GET",
    tokens: Path | None = None,
    paths: Path | None = None,
    bodies: Path | None = None,
    idempotency_keys: bool = False,
    duration: int = DURATION,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    """One wrk run (``bench/wrk.lua``). With ``server_pids``, also the CPU time per request of
    the server processes, of wrk, and of the rest of the machine (PostgreSQL and Redis): unlike
    req/s, that hardly depends on how fast the machine happens to be."""
    busy_before = machine_busy_seconds()
    args = [binary, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "5s"]
    args += ["-s", str(BENCH / "wrk.lua"), url, "--", method]
    args += [str(tokens) if tokens else "-", str(THREADS), str(paths) if paths else "-"]
    args += [str(bodies) if bodies else "-", uuid.uuid4().hex if idempotency_keys else "-"]
    server_before = cpu_seconds(server_pids or [])
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60, check=True)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(server_pids or []) - server_before
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    seconds = result["duration_us"] / 1e6
    latency = result["latency_us"]
    result["rps"] = round(result["requests"] / seconds, 1)
    result["statuses"] = dict(sorted(result["statuses"].items()))
    result["p50_ms"] = round(latency["p50"] / 1000, 2)
    result["p99_ms"] = round(latency["p99"] / 1000, 2)
    if server_pids and result["requests"]:
        wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
            wrk_before.ru_utime + wrk_before.ru_stime
        )
        # The rest of the machine's busy time: PostgreSQL and Redis above all (the raw ceilings
        # spend most of theirs there), plus whatever else ran.
        rest_cpu = machine_busy_seconds() - busy_before - server_cpu - wrk_cpu
        per_request = (server_cpu + rest_cpu + wrk_cpu) / result["requests"]
        result["server_cpu_us_per_request"] = round(1e6 * server_cpu / result["requests"], 1)
        result["db_cpu_us_per_request"] = round(1e6 * max(rest_cpu, 0) / result["requests"], 1)
        result["wrk_cpu_us_per_request"] = round(1e6 * wrk_cpu / result["requests"], 1)
        # What two dedicated cores would serve if server, backends and wrk were all that ran.
        cores = min(2, os.cpu_count() or 2)
        result["projected_rps_2_dedicated_cores"] = (
            round(cores / per_request) if per_request else None
        )
    return result


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the given processes so far (their threads included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def request_counts(base: str) -> Counter[tuple[str, str]]:
    """(route, status) → requests so far, summed over the workers (multiprocess metrics), once
    the requests wrk left in flight when it stopped have been answered (two reads alike)."""
    counts = _read_request_counts(base)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = _read_request_counts(base)
        if again == counts:
            break
        counts = again
    return counts


def _read_request_counts(base: str) -> Counter[tuple[str, str]]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    counts: Counter[tuple[str, str]] = Counter()
    pattern = re.compile(r"^haot_http_requests_total\{(.*)\} ([0-9.e+]+)$")
    for line in text.splitlines():
        if match := pattern.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            counts[(labels.get("route", ""), labels.get("status", ""))] += int(
                float(match.group(2))
            )
    return counts


def statuses(
    before: Counter[tuple[str, str]], after: Counter[tuple[str, str]], route: str
) -> dict[str, int]:
    return {
        status: after[(r, status)] - before[(r, status)]
        for (r, status) in after
        if r == route and after[(r, status)] - before[(r, status)]
    }
