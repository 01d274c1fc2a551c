"""Prometheus metrics of the platform (contexts declare their own beside their code).

Works in multi-process mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (``haot serve --workers N``
sets it), which prometheus-client reads at import time.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "haot_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "haot_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_FLIGHT = Gauge(
    "haot_http_requests_in_flight", "HTTP requests being handled", multiprocess_mode="livesum"
)
OUTBOX_PUBLISHED = Counter("haot_outbox_published_total", "Outbox rows published")
OUTBOX_RELAY_ERRORS = Counter("haot_outbox_relay_errors_total", "Outbox relay failures")
# Gauges of shared state (a database, Redis) are measured by more than one process (each worker
# of ``haot serve --workers N``, at a scrape or every 15 s): the most recent measurement is the
# value, never one left behind by a worker that has not measured for a while or has died.
OUTBOX_BACKLOG = Gauge(
    "haot_outbox_backlog", "Unpublished outbox rows", ["database"], multiprocess_mode="mostrecent"
)
OUTBOX_OLDEST_AGE = Gauge(
    "haot_outbox_oldest_age_seconds",
    "Seconds since the oldest unpublished outbox row was written (0: none unpublished)",
    ["database"],
    multiprocess_mode="mostrecent",
)
EVENTS_CONSUMED = Counter("haot_events_consumed_total", "Events applied by consumers", ["consumer"])
EVENTS_DUPLICATE = Counter(
    "haot_events_duplicate_total", "Redelivered events skipped by the inbox", ["consumer"]
)
EVENTS_POISON = Counter(
    "haot_events_poison_total",
    "Events a consumer could not decode into their contract, parked as dead letters",
    ["consumer", "type"],
)
CONSUMER_LAG = Gauge(
    "haot_consumer_lag",
    "Messages behind the partition end (Kafka only)",
    ["consumer", "topic", "partition"],
    multiprocess_mode="max",
)
RATE_LIMITED = Counter("haot_rate_limited_total", "Requests refused by a rate limit", ["limit"])
DEPENDENCY_UP = Gauge(
    "haot_dependency_up",
    "1 when a dependency passed this process's last readiness check (/readyz, and every scrape),"
    " 0 when it failed; labelled by the check's name in /readyz",
    ["dependency"],
    multiprocess_mode="mostrecent",
)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
