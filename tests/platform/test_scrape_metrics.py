"""Gauges measured when Prometheus scrapes (what the alerts of deploy/prometheus read): every
readiness check as ``haot_dependency_up``, and each database's outbox backlog and the age of its
oldest unpublished row, fresh at every scrape whether or not the process runs the relay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from haot.bootstrap import build_platform
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.jobs import Jobs
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from tests.platform.conftest import ClientFactory, one_backend


async def dependencies_scraped(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "haot_dependency_up"
    }


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    """The all-in-one platform, started but running no relay: nothing publishes the outbox."""
    built = build_platform(settings)
    await built.start()
    try:
        yield built
    finally:
        await built.stop()


@one_backend
async def test_a_scrape_reports_every_dependency_as_its_readiness_check_found_it(
    make_probe_client: ClientFactory,
) -> None:
    # (Other checks may be in the process's registry: what tests before this one measured.)
    async with make_probe_client() as client:
        scraped = await dependencies_scraped(client)
        assert (scraped["database"], scraped["redis"]) == (1.0, 1.0)
    async with make_probe_client(redis_url="redis://127.0.0.1:1/0") as client:
        scraped = await dependencies_scraped(client)
        assert (scraped["database"], scraped["redis"]) == (1.0, 0.0)
        ready = await client.get("/readyz")  # the probe and the gauge say the same
        assert ready.status_code == 503
        assert gauge("haot_dependency_up", dependency="redis") == 0.0


@one_backend
async def test_a_check_without_an_answer_by_the_deadline_counts_as_down(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    assert (await platform.readiness())["redis"] == "ok"
    assert gauge("haot_dependency_up", dependency="redis") == 1.0
    monkeypatch.setattr(platform.redis, "ping", hangs)
    checks = await platform.readiness(within=0.3)
    assert list(checks) == ["deadline"]
    assert gauge("haot_dependency_up", dependency="database") == 1.0  # answered in time
    assert gauge("haot_dependency_up", dependency="redis") == 0.0


async def test_outbox_backlog_and_oldest_age_are_measured_at_each_scrape(
    platform: Platform, settings: Settings
) -> None:
    database = settings.database_url.split("@")[-1]
    await platform.measure_for_scrape()
    assert gauge("haot_outbox_backlog", database=database) == 0.0
    assert gauge("haot_outbox_oldest_age_seconds", database=database) == 0.0

    sessions = platform.databases.sessions_for("reservation")
    async with sessions() as session:
        for minutes in (7, 3):
            session.add(
                OutboxMessage(
                    event_id=uuid.uuid4(),
                    topic="haot.test",
                    key="k",
                    type="test.thing",
                    version=1,
                    payload={},
                    occurred_at=utcnow() - timedelta(minutes=minutes),
                )
            )
        await session.commit()
    await platform.measure_for_scrape()
    assert gauge("haot_outbox_backlog", database=database) == 2.0
    age = gauge("haot_outbox_oldest_age_seconds", database=database)
    assert age is not None
    assert 7 * 60 <= age < 8 * 60  # the oldest row's

    async with sessions() as session:
        await session.execute(update(OutboxMessage).values(published_at=utcnow()))
        await session.commit()
    await platform.measure_for_scrape()
    assert gauge("haot_outbox_backlog", database=database) == 0.0
    assert gauge("haot_outbox_oldest_age_seconds", database=database) == 0.0


async def test_a_job_exports_both_outcomes_from_its_registration() -> None:
    """The alert on a job's failures reads an increase: its first failure must be one (a series
    born at 1 shows no increase)."""
    name = f"test-job-{uuid.uuid4().hex[:8]}"

    async def fails(as_of: object, dry_run: bool) -> None:
        raise RuntimeError("the job failed")

    jobs = Jobs()
    jobs.register(name, fails, every_seconds=3600)
    assert gauge("haot_job_runs_total", job=name, outcome="ok") == 0.0
    assert gauge("haot_job_runs_total", job=name, outcome="error") == 0.0
    with pytest.raises(RuntimeError):
        await jobs.run(name)
    assert gauge("haot_job_runs_total", job=name, outcome="error") == 1.0
