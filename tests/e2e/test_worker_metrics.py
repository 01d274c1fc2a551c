"""What only workers measure reaches Prometheus in the split deployment (issue 16): every
``haot worker --metrics-port`` answers its probes and ``/metrics``, and after a booking the
counters of its relay and consumers (over the real broker) show it, consumer lag included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from haot.platform.settings import CONTEXTS
from tests.e2e import flows
from tests.support.deployment import Deployment

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    answer = await client.get(f"{url}/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples carrying ``labels``; None when there is none."""
    wanted = set(labels.items())
    found = [value for (n, ls), value in samples.items() if n == name and wanted <= ls]
    return sum(found) if found else None


async def eventually(
    client: httpx.AsyncClient, url: str, holds: Callable[[Samples], bool], what: str
) -> Samples:
    deadline = time.monotonic() + 30
    while True:
        samples = await scrape(client, url)
        if holds(samples):
            return samples
        assert time.monotonic() < deadline, f"{what} not seen at {url}/metrics within 30 s"
        await asyncio.sleep(0.5)


async def test_each_worker_serves_its_probes_and_metrics(split_deployment: Deployment) -> None:
    split = split_deployment.split
    assert split is not None
    async with httpx.AsyncClient(timeout=10) as client:
        for context in CONTEXTS:
            url = split.layout.worker_url_of(context)
            assert (await client.get(f"{url}/healthz")).status_code == 200
            ready = await client.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["broker"] == "ok", ready.json()
            samples = await scrape(client, url)
            # Measured at the scrape: this worker's database, Redis and the broker.
            assert total(samples, "haot_dependency_up", dependency="broker") == 1
            assert total(samples, "haot_dependency_up", dependency="redis") == 1
            assert total(samples, "haot_outbox_backlog") is not None, context
            # A worker serves no API: no request of it is counted as one.
            assert total(samples, "haot_http_requests_total") is None


async def test_a_booking_shows_in_the_workers_relay_and_consumer_counters(
    split_deployment: Deployment,
) -> None:
    split = split_deployment.split
    assert split is not None
    reservation_worker = split.layout.worker_url_of("reservation")
    lodging_worker = split.layout.worker_url_of("lodging")
    async with httpx.AsyncClient(timeout=10) as client:
        published_before = total(
            await scrape(client, reservation_worker), "haot_outbox_published_total"
        )
        consumed_before = (
            total(
                await scrape(client, lodging_worker),
                "haot_events_consumed_total",
                consumer="lodging.reservations",
            )
            or 0
        )

        await flows.book_and_pay(split_deployment)

        # The reservation's events left through its own worker's relay ...
        await eventually(
            client,
            reservation_worker,
            lambda s: (total(s, "haot_outbox_published_total") or 0) > (published_before or 0),
            "reservation events relayed",
        )
        # ... and the lodging worker sold the nights from the broker, measuring how far behind
        # the end of each partition it read.
        samples = await eventually(
            client,
            lodging_worker,
            lambda s: (
                (total(s, "haot_events_consumed_total", consumer="lodging.reservations") or 0)
                > consumed_before
            ),
            "the confirmation consumed by lodging.reservations",
        )
        lag = total(samples, "haot_consumer_lag", consumer="lodging.reservations")
        assert lag is not None, "no consumer lag measured"
        assert lag >= 0
