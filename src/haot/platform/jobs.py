"""Scheduled jobs: a registry every context adds to, run periodically by workers and on demand by
admins (``POST /api/v1/admin/jobs/{name}/run``, with ``as_of`` outside production so tests and
operators can move time)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from haot.platform.clock import SEOUL, utcnow
from haot.platform.errors import InvalidInput, NotFound

log = structlog.get_logger(__name__)

JOB_RUNS = Counter("haot_job_runs_total", "Scheduled job runs", ["job", "outcome"])
JOB_DURATION = Histogram("haot_job_duration_seconds", "Scheduled job duration", ["job"])

JobFunction = Callable[[datetime, bool], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: JobFunction
    every_seconds: float
    dry_run: bool


class UnknownJob(NotFound):
    code = "job_not_found"
    title = "No such job"


def parse_as_of(raw: str | None) -> datetime:
    """An ISO 8601 date (midnight Asia/Seoul) or timestamp (naive = UTC); None means now."""
    if not raw:
        return utcnow()
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), dtime(0, 0), tzinfo=SEOUL).astimezone(
                UTC
            )
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput("as_of must be an ISO 8601 date or timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def register(
        self, name: str, run: JobFunction, *, every_seconds: float, dry_run: bool = False
    ) -> None:
        """``dry_run``: the job can report what it would do without doing it."""
        self._jobs[name] = Job(name=name, run=run, every_seconds=every_seconds, dry_run=dry_run)
        # Both outcomes exported from the start (at 0), so the first failure is an increase.
        for outcome in ("ok", "error"):
            JOB_RUNS.labels(name, outcome)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    async def run(self, name: str, *, as_of: datetime | None = None, dry_run: bool = False) -> Any:
        job = self._jobs.get(name)
        if job is None:
            raise UnknownJob(f"unknown job {name!r}; known: {', '.join(self.names())}")
        if dry_run and not job.dry_run:
            raise InvalidInput(f"job {name!r} has no dry-run mode")
        started = time.perf_counter()
        try:
            result = await job.run(as_of or utcnow(), dry_run)
        except Exception:
            JOB_RUNS.labels(name, "error").inc()
            raise
        finally:
            JOB_DURATION.labels(name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(name, "ok").inc()
        return result

    async def schedule(self, stop: asyncio.Event) -> None:
        """Run every job at its interval until ``stop``; one job failing never stops the rest."""
        next_run = dict.fromkeys(self._jobs, 0.0)
        while not stop.is_set():
            now = time.monotonic()
            for name, job in self._jobs.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + job.every_seconds
                try:
                    result = await self.run(name)
                    if _did_something(result):
                        log.info("job_ran", job=name, result=result)
                except Exception:
                    log.exception("job_failed", job=name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


def _did_something(result: Any) -> bool:
    """A sweep that found nothing to do is not worth a log line every few seconds."""
    if isinstance(result, dict):
        return any(isinstance(v, int) and v > 0 for v in result.values())
    return bool(result)
