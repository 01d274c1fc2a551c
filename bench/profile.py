"""py-spy on one worker of the server during a load, summarised by package and function."""

# ruff: noqa: S603 (runs py-spy)
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import BENCH, DURATION, Server, ensure_py_spy, log

_CATEGORIES = [
    ("jwt (token verify)", ("/jwt/",)),
    ("redis client", ("/redis/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("fastapi (routing, dependencies, serialisation)", ("/fastapi/",)),
    ("starlette", ("/starlette/",)),
    ("uvicorn / httptools", ("/uvicorn/", "/httptools/")),
    ("structlog", ("/structlog/",)),
    ("prometheus_client", ("/prometheus_client/",)),
    ("sqlalchemy", ("/sqlalchemy/",)),
    ("asyncpg", ("/asyncpg/",)),
    ("haot code", ("/haot/",)),
    ("asyncio / uvloop", ("/asyncio/", "/uvloop/")),
]


def _frame_file(frame: str) -> str:
    match = re.search(r"\(([^)]*)\)$", frame)
    return match.group(1) if match else frame


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    return re.sub(r"\((?:[^()]*/)?(?:site-packages|src|lib/python3\.\d+)/", "(", frame)


_WATCHED = (
    "/haot/",
    "/fastapi/",
    "/starlette/",
    "/jwt/",
    "/redis/",
    "/pydantic",
    "/sqlalchemy/",
)


def summarise_profile(raw: Path) -> dict[str, Any]:
    """Collapsed stacks (py-spy raw, full file names) → self time by package and by function,
    and inclusive time of the hottest functions of haot and the libraries on the hot path."""
    self_time: Counter[str] = Counter()
    self_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = _frame_file(frames[-1])
        category = next(
            (name for name, marks in _CATEGORIES if any(m in leaf for m in marks)), "other"
        )
        self_time[category] += count
        self_function[_short(frames[-1])] += count
        seen = set()
        for frame in frames:
            name = _short(re.sub(r":\d+\)$", ")", frame))  # per function, not per line
            if any(mark in frame for mark in _WATCHED) and name not in seen:
                seen.add(name)
                inclusive[name] += count

    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "self_by_package_pct": {k: pct(v) for k, v in self_time.most_common()},
        "self_top_functions_pct": {k: pct(v) for k, v in self_function.most_common(15)},
        "inclusive_top_pct": {k: pct(v) for k, v in inclusive.most_common(30)},
    }


def profile(
    server: Server, load: Callable[[int], dict[str, Any]], workdir: Path, name: str
) -> dict[str, Any] | None:
    """Records one worker while ``load(seconds)`` runs a wrk load against the server."""
    py_spy = ensure_py_spy()
    pids = server.workers()
    if not py_spy or not pids:
        log("profile skipped (no py-spy or no worker process found)")
        return None
    raw = workdir / "profile.txt"
    seconds = max(4, DURATION - 4)
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pids[0]),
            "--duration",
            str(seconds),
            "--rate",
            "97",
            "--nonblocking",
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        during = load(seconds + 2)
        spy.wait(timeout=60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if not raw.exists():
        log("py-spy wrote nothing: " + (spy.stderr.read().decode() if spy.stderr else ""))
        return None
    summary = summarise_profile(raw)
    summary["worker_pid"] = pids[0]
    summary["load_during_profile"] = {"rps": during["rps"], "p99_ms": during["p99_ms"]}
    kept = BENCH / "tmp"
    kept.mkdir(exist_ok=True)
    shutil.copy(raw, kept / f"profile-{name}.txt")  # collapsed stacks (bench/tmp is not committed)
    return summary
