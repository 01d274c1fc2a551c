"""``make bench``: booking, search, claims and probes of haot at catalogue scale, each beside its
raw ceiling served by the same server software in the same run, then correctness checks.

What it does (everything on loopback, every step bounded in time, everything it made removed
whatever happens):

1. Claims a free Redis database (the test sessions' protocol) and creates a fresh PostgreSQL
   database, migrated, with a catalogue of ``BENCH_LODGINGS`` (10,000) lodgings x
   ``BENCH_NIGHTS`` (365) nights (``bench/catalogue.py``), and scratch copies of the nights the
   booking runs touch for the raw hold ceiling.
2. Starts ``haot serve --workers N`` (PostgreSQL, Redis, in-process bus) and the raw ceilings
   (``bench/ceilings.py`` on uvicorn with the same workers).
3. Runs each workload right after its ceiling (the machine's speed drifts between runs):

   - ``GET /healthz``, beside a bare JSON endpoint;
   - claims on a drop of ``BENCH_QUANTITY``, another user each, beside the claim script by
     EVALSHA;
   - warm search (100 cached queries) and cold search (distinct queries over regions, dates,
     party sizes and sorts: every one a miss), beside bare JSON;
   - create reservation (1-3 night stays over ``BENCH_BOOKED_ROOM_TYPES`` room types and the
     whole calendar, ``BENCH_GUESTS`` guests, an Idempotency-Key each), beside the raw 3-night
     hold on the same stays;
   - the last-room race (one room type's same 3 nights), beside the raw hold on the same race.

4. Checks: the drop issued exactly its quantity, once per user; no night oversold; every night's
   ``held`` equals its HELD holds; every 201 has its hold; the raw tables alike; no 5xx anywhere.
5. Profiles one worker with py-spy during a further booking run (``BENCH_PROFILE=0`` skips it).
6. Writes ``bench/results/<timestamp>.json`` and ``bench/results/latest.md``; exit status 1 when a
   check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench import ceilings, claims, workloads
from bench.catalogue import Catalogue, load
from bench.harness import (
    BENCH,
    BOOKED_ROOM_TYPES,
    CONNECTIONS,
    DURATION,
    GUESTS,
    LODGINGS,
    NIGHTS,
    PROFILE,
    QUANTITY,
    RESULTS,
    THREADS,
    USERS,
    WORKERS,
    Backends,
    Server,
    ensure_wrk,
    free_port,
    log,
    request_counts,
    statuses,
    wrk,
)
from bench.profile import profile
from bench.report import markdown
from haot.platform.auth import Role, TokenSigner
from haot.platform.clock import seoul_today


def _prepare_database(backends: Backends, env: dict[str, str]) -> Catalogue:
    log(f"migrating {backends.database}")
    subprocess.run(
        [sys.executable, "-m", "haot.cli", "migrate"],
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    log(f"loading {LODGINGS:,} lodgings x {NIGHTS} nights")
    first_night = seoul_today() + timedelta(days=1)
    catalogue = asyncio.run(
        load(backends.database_dsn, lodgings=LODGINGS, nights=NIGHTS, first_night=first_night)
    )
    log(
        f"catalogue: {catalogue.lodgings:,} lodgings, {len(catalogue.room_types):,} room types, "
        f"{catalogue.nights:,} nights in {catalogue.seconds} s"
    )
    return catalogue


async def _prepare_raw(dsn: str, room_type_ids: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await ceilings.prepare(conn, room_type_ids)
    finally:
        await conn.close()


def _warm(base: str, paths: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in paths:
            client.get(path).raise_for_status()


def main() -> int:
    wrk_binary = ensure_wrk()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="haot-bench-"))
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    backends = Backends()
    secret = secrets.token_urlsafe(48)
    servers: list[Server] = []
    rng = random.Random(20261203)  # noqa: S311 (reproducible workloads, not security)
    result: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": _loadavg()},
        "config": {
            "workers": WORKERS,
            "duration_s": DURATION,
            "connections": CONNECTIONS,
            "threads": THREADS,
            "quantity": QUANTITY,
            "users": USERS,
            "guests": GUESTS,
            "booked_room_types": BOOKED_ROOM_TYPES,
        },
        "pairs": {},
        "checks": {},
    }
    try:
        backends.claim_redis()
        backends.create_database()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HAOT_")},
            # Not "production": production refuses the built-in fake PortOne the bench pays with.
            "HAOT_ENV": "test",
            "HAOT_DATABASE_URL": backends.database_url,
            "HAOT_REDIS_URL": backends.redis_url,
            "HAOT_JWT_SECRET": secret,
            "HAOT_LOG_LEVEL": "WARNING",
            # Many bookings per guest in a run (the default cap of 5 pending would answer 409).
            "HAOT_MAX_PENDING_RESERVATIONS_PER_USER": "100",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        catalogue = _prepare_database(backends, env)
        result["catalogue"] = {
            "lodgings": catalogue.lodgings,
            "room_types": len(catalogue.room_types),
            "nights": catalogue.nights,
            "first_night": catalogue.first_night.isoformat(),
            "last_night": catalogue.last_night.isoformat(),
            "seconds": catalogue.seconds,
        }
        booked = workloads.booked_room_types(catalogue, BOOKED_ROOM_TYPES + 1, rng)
        hot, booked = booked[0], booked[1:]
        race_check_in = catalogue.first_night + timedelta(days=30)
        asyncio.run(_prepare_raw(backends.database_dsn, [rt.id for rt in (hot, *booked)]))

        files = _write_workloads(workdir, catalogue, booked, hot, race_check_in, rng)
        signer = TokenSigner(secret, issuer="haot", audience="haot-api", ttl_seconds=3 * 3600)
        claimers = workloads.write_lines(
            workdir / "claimers.txt",
            [signer.issue(uuid.uuid4(), Role.USER).token for _ in range(USERS)],
        )
        guests = workloads.write_lines(
            workdir / "guests.txt",
            [signer.issue(uuid.uuid4(), Role.USER).token for _ in range(GUESTS)],
        )

        ceiling = Server.ceilings(
            {
                **env,
                "BENCH_CEILING_DSN": backends.database_dsn,
                "BENCH_CEILING_REDIS": backends.redis_url,
            },
            free_port(),
            workdir / "ceilings.log",
        )
        haot = Server.haot(env, free_port(), workdir / "server.log")
        servers += [ceiling, haot]
        for server in servers:
            log(f"starting {' '.join(server.command[1:4])} on {server.base}")
            server.start()
        ceiling_pids, haot_pids = ceiling.workers(), haot.workers()
        counts_before = request_counts(haot.base)

        admin = signer.issue(uuid.uuid4(), Role.ADMIN).token
        drop = claims.seed(haot.base, admin, QUANTITY)
        raw_drop = claims.raw_drop(backends.redis_url, QUANTITY)
        log("warming both servers")
        wrk(wrk_binary, f"{ceiling.base}/json", duration=3)
        wrk(wrk_binary, f"{haot.base}/healthz", duration=3)

        def pair(
            name: str,
            ceiling_name: str,
            measure_ceiling: Callable[[], dict[str, Any]],
            measure_haot: Callable[[], dict[str, Any]],
        ) -> dict[str, Any]:
            log(f"{name}: ceiling ({ceiling_name})")
            ceiling_run = measure_ceiling()
            log(f"{name}: haot")
            haot_run = measure_haot()
            ratio = round(haot_run["rps"] / ceiling_run["rps"], 3) if ceiling_run["rps"] else 0
            log(
                f"{name}: {haot_run['rps']:,.0f} req/s (p99 {haot_run['p99_ms']} ms) vs "
                f"{ceiling_run['rps']:,.0f}: {ratio}; {haot_run['statuses']}"
            )
            result["pairs"][name] = {
                "ceiling_name": ceiling_name,
                "ceiling": ceiling_run,
                "haot": haot_run,
                "ratio": ratio,
            }
            return haot_run

        def bare_json() -> dict[str, Any]:
            return wrk(wrk_binary, f"{ceiling.base}/json", server_pids=ceiling_pids)

        pair(
            "healthz",
            "json",
            bare_json,
            lambda: wrk(wrk_binary, f"{haot.base}/healthz", server_pids=haot_pids),
        )
        claimed = pair(
            "claims",
            "claim",
            lambda: wrk(
                wrk_binary,
                f"{ceiling.base}/claim/{raw_drop}",
                method="POST",
                server_pids=ceiling_pids,
            ),
            lambda: wrk(
                wrk_binary,
                haot.base + claims.CLAIM_ROUTE.format(event_id=drop),
                method="POST",
                tokens=claimers,
                server_pids=haot_pids,
            ),
        )
        result["checks"]["claims"] = asyncio.run(
            claims.check(backends, drop, QUANTITY, claimed["statuses"].get("202", 0))
        )

        def warm_search() -> dict[str, Any]:
            # Cached right before (entries live 30 s), so the run reads what it means to.
            _warm(haot.base, files["warm"].read_text().split())
            return wrk(wrk_binary, haot.base, paths=files["warm"], server_pids=haot_pids)

        pair("warm_search", "json", bare_json, warm_search)
        cold = pair(
            "cold_search",
            "json",
            bare_json,
            lambda: wrk(wrk_binary, haot.base, paths=files["cold"], server_pids=haot_pids),
        )
        result["checks"]["cold_search_all_misses"] = {
            "requests": cold["requests"],
            "distinct_queries": files["cold_count"],
            "ok": cold["requests"] < files["cold_count"],
        }

        def book(bodies: Path) -> Callable[[], dict[str, Any]]:
            return lambda: wrk(
                wrk_binary,
                haot.base + workloads.RESERVATIONS_ROUTE,
                method="POST",
                tokens=guests,
                bodies=bodies,
                idempotency_keys=True,
                server_pids=haot_pids,
            )

        def hold(bodies: Path) -> Callable[[], dict[str, Any]]:
            return lambda: wrk(
                wrk_binary,
                f"{ceiling.base}/hold",
                method="POST",
                bodies=bodies,
                server_pids=ceiling_pids,
            )

        for name, ceiling_name, bodies in (
            ("create_reservation", "hold", files["stays"]),
            ("race", "hold_race", files["race"]),
        ):
            before = asyncio.run(workloads.reservation_count(backends.database_dsn))
            counted = request_counts(haot.base)
            pair(name, ceiling_name, hold(bodies), book(bodies))
            # The server's own count, once the requests wrk left in flight have been answered.
            answered = statuses(counted, request_counts(haot.base), workloads.RESERVATIONS_ROUTE)
            after = asyncio.run(workloads.reservation_count(backends.database_dsn))
            result["pairs"][name]["haot"]["server_statuses"] = answered
            result["checks"][f"{name} inventory"] = asyncio.run(
                workloads.check_inventory(
                    backends.database_dsn,
                    created=after - before,
                    answered_201=answered.get("201", 0),
                )
            )
            result["checks"][f"{name} raw inventory"] = asyncio.run(
                workloads.check_raw_inventory(backends.database_dsn)
            )

        counts_after = request_counts(haot.base)
        server_5xx = {
            f"{route} {status}": counts_after[(route, status)] - counts_before[(route, status)]
            for (route, status) in counts_after
            if status.startswith("5")
            and counts_after[(route, status)] > counts_before[(route, status)]
        }
        answered_5xx = {
            f"{name} {side}": {s: n for s, n in pair_run[side]["statuses"].items() if s[0] == "5"}
            for name, pair_run in result["pairs"].items()
            for side in ("ceiling", "haot")
            if any(s[0] == "5" for s in pair_run[side]["statuses"])
        }
        result["checks"]["no 5xx"] = {
            "haot_metrics": server_5xx,
            "answered": answered_5xx,
            "ok": not server_5xx and not answered_5xx,
        }
        if PROFILE:
            log("profiling one haot worker during another booking run")
            prof = profile(haot, lambda seconds: _rebook(book, files, seconds), workdir, "booking")
            if prof:
                prof["workload"] = "create reservation"
                result["profile"] = prof
        result["machine"]["loadavg_after"] = _loadavg()
        result["notes"] = os.environ.get("BENCH_NOTES", "")
    finally:
        for server in reversed(servers):
            server.stop()
        backends.drop_database()
        backends.release_redis()
        kept = BENCH / "tmp"
        kept.mkdir(exist_ok=True)
        for log_name in ("server.log", "ceilings.log"):
            with contextlib.suppress(OSError):
                shutil.copy(workdir / log_name, kept / log_name.replace(".log", "-latest.log"))
        shutil.rmtree(workdir, ignore_errors=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    (RESULTS / "latest.md").write_text(report)
    print(report)
    return 0 if all(check["ok"] for check in result["checks"].values()) else 1


def _write_workloads(
    workdir: Path,
    catalogue: Catalogue,
    booked: list[Any],
    hot: Any,
    race_check_in: Any,
    rng: random.Random,
) -> dict[str, Any]:
    # More lines than a run can use: no body, path or key repeats within a run.
    cold = workloads.search_paths(catalogue, 200_000, rng)
    warm = workloads.search_paths(catalogue, 100, random.Random(7))  # noqa: S311
    return {
        "stays": workloads.write_lines(
            workdir / "stays.txt", workloads.stay_bodies(catalogue, booked, 50_000, rng)
        ),
        "race": workloads.write_lines(
            workdir / "race.txt", workloads.race_bodies(hot, race_check_in)
        ),
        "cold": workloads.write_lines(workdir / "cold.txt", cold),
        "cold_count": len(cold),
        "warm": workloads.write_lines(workdir / "warm.txt", warm),
    }


def _rebook(
    book: Callable[[Path], Callable[[], dict[str, Any]]], files: dict[str, Any], seconds: int
) -> dict[str, Any]:
    del seconds  # the booking run lasts BENCH_DURATION, longer than the recording
    return book(files["stays"])()


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    raise SystemExit(main())
