"""The markdown report of ``make bench`` (``bench/results/latest.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.harness import CONNECTIONS, DURATION, THREADS, WORKERS


@dataclass(frozen=True)
class Target:
    """What issue 12 asks of a workload: a ratio to its ceiling, and a p99 where it names one."""

    ratio: float
    p99_ms: float | None = None


TARGETS = {
    "create_reservation": Target(0.5, 100),
    "race": Target(0.65),
    "warm_search": Target(0.30, 30),
    "cold_search": Target(0.10, 100),
    "healthz": Target(0.6),
    "claims": Target(0.65, 50),
}
LABELS = {
    "healthz": "GET /healthz",
    "claims": "POST claims on a drop (mostly sold out)",
    "create_reservation": "POST /reservations, stays spread over the catalogue",
    "race": "POST /reservations, last-room race (mostly 409)",
    "warm_search": "GET /lodgings, cached queries",
    "cold_search": "GET /lodgings, every query a miss",
}
CEILING_LABELS = {
    "json": "bare JSON",
    "hold": "raw 3-night hold",
    "hold_race": "raw hold, same race",
    "claim": "raw claim EVALSHA",
}


def verdict(name: str, ratio: float, p99_ms: float) -> str:
    target = TARGETS[name]
    met = ratio >= target.ratio and (target.p99_ms is None or p99_ms <= target.p99_ms)
    wanted = f">= {target.ratio}" + (f", p99 <= {target.p99_ms:.0f} ms" if target.p99_ms else "")
    return f"{'met' if met else 'NOT met'} ({wanted})"


def _answers(run: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in run.get("statuses", {}).items())


def markdown(result: dict[str, Any]) -> str:
    cat = result["catalogue"]
    lines = [
        f"# make bench — {result['started_at']}",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, load average before "
        f"{result['machine']['loadavg_before']}, after {result['machine'].get('loadavg_after')}. "
        f"Catalogue: {cat['lodgings']:,} lodgings, {cat['room_types']:,} room types, "
        f"{cat['nights']:,} nights ({cat['first_night']} to {cat['last_night']}), loaded in "
        f"{cat['seconds']} s. haot: `haot serve --workers {WORKERS}` on PostgreSQL + Redis; the "
        f"ceilings: `uvicorn bench.ceilings:app --workers {WORKERS}` (same server software); wrk "
        f"`-t{THREADS} -c{CONNECTIONS} -d{DURATION}s`; all on the same machine. Each workload "
        "runs right after its ceiling, so each ratio compares neighbouring runs (this machine's "
        "speed drifts between runs).",
        "",
        "| workload | req/s | p50 ms | p99 ms | answers | ceiling | ceiling req/s | ratio "
        "| target | server CPU µs/req | PostgreSQL+Redis CPU µs/req |",
        "|---|---:|---:|---:|---|---|---:|---:|---|---:|---:|",
    ]
    for name, pair in result["pairs"].items():
        run, ceiling = pair["haot"], pair["ceiling"]
        ratio = run["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
        lines.append(
            f"| {LABELS[name]} | {run['rps']:,.0f} | {run['p50_ms']} | {run['p99_ms']} | "
            f"{_answers(run)} | {CEILING_LABELS[pair['ceiling_name']]} | {ceiling['rps']:,.0f} | "
            f"{ratio:.2f} | {verdict(name, ratio, run['p99_ms'])} | "
            f"{run.get('server_cpu_us_per_request', '-')} | "
            f"{run.get('db_cpu_us_per_request', '-')} |"
        )
    lines += [
        "",
        "Ceilings (each measured right before its workload):",
        "",
        "| ceiling run | req/s | p50 ms | p99 ms | answers | server CPU µs/req "
        "| PostgreSQL+Redis CPU µs/req |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, pair in result["pairs"].items():
        ceiling = pair["ceiling"]
        lines.append(
            f"| {CEILING_LABELS[pair['ceiling_name']]} (before {name}) | {ceiling['rps']:,.0f} | "
            f"{ceiling['p50_ms']} | {ceiling['p99_ms']} | {_answers(ceiling)} | "
            f"{ceiling.get('server_cpu_us_per_request', '-')} | "
            f"{ceiling.get('db_cpu_us_per_request', '-')} |"
        )
    lines += ["", "Correctness after the runs:", ""]
    for name, check in result["checks"].items():
        lines.append(f"- {name}: {'OK' if check['ok'] else 'FAILED'} — {json.dumps(check)}")
    prof = result.get("profile")
    if prof:
        lines += [
            "",
            f"## Profile: py-spy on one worker, {prof['samples']} samples during "
            f"{prof['workload']} at {prof['load_during_profile']['rps']:,.0f} req/s",
            "",
            "Self time by package:",
            "",
        ]
        lines += [f"- {k}: {v} %" for k, v in prof["self_by_package_pct"].items()]
        lines += ["", "Self time, top functions:", ""]
        lines += [f"- `{k}`: {v} %" for k, v in prof["self_top_functions_pct"].items()]
        lines += ["", "Inclusive time, hottest functions:", ""]
        lines += [f"- `{k}`: {v} %" for k, v in list(prof["inclusive_top_pct"].items())[:25]]
    if result.get("notes"):
        lines += ["", "## Notes", "", result["notes"]]
    return "\n".join(lines) + "\n"
