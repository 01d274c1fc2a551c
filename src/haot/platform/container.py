"""The infrastructure every context shares, built once per process (never at import time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from purgatory import AsyncCircuitBreakerFactory
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from haot.platform.auth import Revocations, TokenSigner
from haot.platform.clock import utcnow
from haot.platform.db import Databases
from haot.platform.errors import HaotError
from haot.platform.idempotency import IdempotencyStore
from haot.platform.inbox import Consumer
from haot.platform.jobs import Jobs
from haot.platform.live import LiveStreams
from haot.platform.metrics import DEPENDENCY_UP, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from haot.platform.outbox import OutboxMessage, OutboxRelay, count_unpublished
from haot.platform.purge import Purges
from haot.platform.ratelimit import RateLimiter
from haot.platform.redis import Redis, create_redis
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import CONTEXTS, Settings
from haot.platform.transport import InProcessTransport, Transport
from haot.platform.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from haot.platform.tracing import Tracing

log = structlog.get_logger(__name__)

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]
Measure = Callable[[], Awaitable[None]]

STOP_GRACE_SECONDS = 5.0


class Platform:
    def __init__(self, settings: Settings, *, contexts: tuple[str, ...] = CONTEXTS) -> None:
        self.settings = settings
        self.contexts = contexts
        # Before any engine exists: in production, no database of this process may be SQLite.
        settings.refuse_sqlite_in_production(contexts)
        # Traces (HAOT_OTEL_EXPORTER_OTLP_ENDPOINT): OpenTelemetry's SDK is imported only then.
        self.tracing: Tracing | None = None
        if settings.tracing_enabled:
            from haot.platform.tracing import Tracing

            self.tracing = Tracing.from_settings(settings, contexts=contexts)
        self.databases = Databases(settings)
        self.redis: Redis = create_redis(settings)
        self.rate_limiter = RateLimiter(self.redis, enabled=settings.rate_limit_enabled)
        self.signer = TokenSigner(
            settings.jwt_secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        # What the contexts served here present when they call others (one per caller).
        self.service_tokens = {
            context: ServiceTokens(settings.service_token_secret, caller=context)
            for context in contexts
        }
        # One breaker per callee, shared by every client of this process (ADR 0018).
        self.breakers = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=10)
        self.revocations = Revocations(self.redis, ttl_seconds=settings.access_token_ttl_seconds)
        self.live = LiveStreams(
            self.redis,
            per_user=settings.live_streams_per_user,
            keep_alive_seconds=settings.live_keep_alive_seconds,
        )
        self.transport: Transport = self._create_transport()
        self.relays: dict[str, OutboxRelay] = {
            url: OutboxRelay(
                self.databases.sessions_for(self._context_of(url)),
                self.transport,
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval_seconds,
            )
            for url in self.databases.distinct_urls(contexts)
        }
        self.idempotency = IdempotencyStore(
            self.databases.sessions_for("platform"),
            ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
            lease=timedelta(seconds=settings.idempotency_lease_seconds),
        )
        self.consumers: list[Consumer] = []
        self.background: list[tuple[str, BackgroundTask]] = []
        self.jobs = Jobs()
        self.purges = Purges(
            [
                self.databases.sessions_for(self._context_of(url))
                for url in self.databases.distinct_urls(contexts)
            ],
            self.databases.sessions_for("platform"),
            outbox_retention=timedelta(hours=settings.outbox_retention_hours),
            inbox_retention=timedelta(days=settings.inbox_retention_days),
        )
        self.jobs.register("purge-outbox", self.purges.outbox, every_seconds=3600, dry_run=True)
        self.jobs.register("purge-inbox", self.purges.inbox, every_seconds=3600, dry_run=True)
        self.jobs.register(
            "purge-idempotency", self.purges.idempotency, every_seconds=600, dry_run=True
        )
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._before_serving: list[Callable[[], Awaitable[None]]] = []
        self._on_scrape: list[Measure] = [self.measure_outbox]
        self.services: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def _context_of(self, url: str) -> str:
        return next(c for c in self.contexts if self.databases.url_for(c) == url)

    def _create_transport(self) -> Transport:
        if self.settings.kafka_enabled:
            from haot.platform.kafka import KafkaTransport

            return KafkaTransport(self.settings)
        return InProcessTransport()

    def uow_factory(self, context: str) -> UnitOfWorkFactory:
        url = self.databases.url_for(context)
        relay = self.relays.get(url)
        return UnitOfWorkFactory(
            self.databases.sessions_for(context),
            topic_prefix=self.settings.kafka_topic_prefix,
            on_commit=relay.wake if relay and self._wakes_relay else None,
        )

    @property
    def _wakes_relay(self) -> bool:
        # Only where this process runs the relay: the embedded default (in-process transport).
        return isinstance(self.transport, InProcessTransport)

    def register_consumer(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)
        if isinstance(self.transport, InProcessTransport):
            self.transport.subscribe(consumer)

    def before_serving(self, action: Callable[[], Awaitable[None]]) -> None:
        """Warm something up that only a serving process needs (not ``haot worker`` nor a job),
        before it takes requests."""
        self._before_serving.append(action)

    async def warm_up(self) -> None:
        for action in self._before_serving:
            await action()

    def service_client(
        self, callee: str, *, caller: str, errors: Mapping[str, type[HaotError]]
    ) -> ServiceClient:
        """A client for ``callee``, served by another process at its ``HAOT_<CALLEE>_URL``
        (ADR 0018), presenting ``caller``'s service credentials; closed when the platform stops."""
        base_url = self.settings.service_url_for(callee)
        if not base_url:
            raise RuntimeError(
                f"{caller} calls {callee}, which this process does not serve: set "
                f"HAOT_{callee.upper()}_URL to where the {callee} service listens"
            )
        client = ServiceClient(
            callee=callee,
            base_url=base_url,
            tokens=self.service_tokens[caller],
            breakers=self.breakers,
            errors=errors,
        )
        self.on_stop(client.aclose)
        return client

    def on_stop(self, action: Callable[[], Awaitable[None]]) -> None:
        """Close something the wiring opened (clients, pools) when the platform stops."""
        self._on_stop.append(action)

    def on_scrape(self, measure: Measure) -> None:
        """Measure a gauge when Prometheus scrapes this process: state that any process serving
        a context can read (its database, Redis), so that it is fresh at every scrape whether or
        not this process runs the relays, consumers and jobs (a worker started without
        ``--metrics-port`` is scraped nowhere)."""
        self._on_scrape.append(measure)

    async def measure_for_scrape(self, *, within: float = 2.0) -> None:
        """What ``/metrics`` runs before it answers: the readiness checks (``haot_dependency_up``)
        and every ``on_scrape`` measurement, each failure logged, all within ``within``
        seconds."""

        async def measure_all() -> None:
            for measure in self._on_scrape:
                try:
                    await measure()
                except Exception:
                    log.warning("scrape_measure_failed", measure=getattr(measure, "__name__", ""))

        async def measured_in_time() -> None:
            try:
                await asyncio.wait_for(measure_all(), timeout=within)
            except TimeoutError:
                log.warning("scrape_measure_overran", seconds=within)

        await asyncio.gather(self.readiness(within=within), measured_in_time())

    async def measure_outbox(self) -> None:
        """``haot_outbox_backlog`` and ``haot_outbox_oldest_age_seconds`` of every database of
        this process (every 15 s where the relays run, and at every scrape)."""
        for url in self.relays:
            database = url.split("@")[-1]
            try:
                async with self.databases.sessions_for(self._context_of(url))() as session:
                    backlog = await count_unpublished(session)
                    oldest = await _oldest_unpublished(session)
            except Exception:
                log.warning("outbox_backlog_unreadable", database=database)
                continue
            OUTBOX_BACKLOG.labels(database).set(backlog)
            age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
            OUTBOX_OLDEST_AGE.labels(database).set(max(age, 0.0))

    def add_background(self, name: str, task: BackgroundTask) -> None:
        self.background.append((name, task))

    async def start(self) -> None:
        if self.tracing is not None:
            # Traces what this task and those it spawns run (relays, consumers, jobs).
            self.tracing.activate(self.databases.engines())
        await self.transport.start()
        # Every serving process checks tokens: each keeps its own replica of revocations.
        self._spawn("revocations", self.revocations.follow)

    def start_workers(self) -> None:
        """Run relays, consumers and jobs in this process (``haot worker`` or embedded serve)."""
        for url, relay in self.relays.items():
            self._spawn(f"relay:{url.split('@')[-1]}", relay.run)
        if not isinstance(self.transport, InProcessTransport):
            from haot.platform.kafka import KafkaTransport

            assert isinstance(self.transport, KafkaTransport)
            for consumer in self.consumers:
                self._spawn(f"consumer:{consumer.name}", self.transport.consumer_loop(consumer))
        self._spawn("outbox-backlog", self._watch_backlog)
        for name, task in self.background:
            self._spawn(name, task)
        if self.jobs.names() and self.settings.jobs_schedule:
            self._spawn("jobs", self.jobs.schedule)

    def _spawn(self, name: str, task: BackgroundTask) -> None:
        async def supervised(stop: asyncio.Event) -> None:
            while not stop.is_set():
                try:
                    await task(stop)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background_task_crashed", task=name)
                    await asyncio.sleep(1.0)

        self._tasks.append(asyncio.create_task(supervised(self._stop), name=name))

    async def _watch_backlog(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.measure_outbox()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=15)

    async def readiness(self, *, within: float = 2.0) -> dict[str, str]:
        """Each dependency checked with a deadline: an unreachable (not refusing) server must not
        hang the probe past its own timeout. Every outcome is also ``haot_dependency_up``: 1 for
        a check that passed, 0 for one that failed or had not answered by the deadline."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self._readiness(checks), timeout=within)
        except TimeoutError:
            for name in self._dependency_names():
                DEPENDENCY_UP.labels(name).set(1 if checks.get(name) == "ok" else 0)
            return {"deadline": f"error: checks took longer than {within}s"}
        for name, outcome in checks.items():
            if outcome != "in-process":
                DEPENDENCY_UP.labels(name).set(1 if outcome == "ok" else 0)
        return checks

    def _database_checks(self) -> list[tuple[str, str]]:
        """(check name, URL) of every database of this process."""
        return [
            ("database" if len(self.relays) == 1 else f"database:{url.split('@')[-1]}", url)
            for url in self.databases.distinct_urls(self.contexts)
        ]

    def _dependency_names(self) -> list[str]:
        names = [name for name, _ in self._database_checks()] + ["redis"]
        return [*names, "broker"] if self.settings.kafka_enabled else names

    async def _readiness(self, checks: dict[str, str]) -> None:
        """Fills ``checks`` as each answers (what answered before a deadline is kept)."""
        for name, url in self._database_checks():
            try:
                async with self.databases.sessions_for(self._context_of(url))() as session:
                    await session.execute(text("SELECT 1"))
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        try:
            await self.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        if self.settings.kafka_enabled:
            from haot.platform.kafka import KafkaTransport

            assert isinstance(self.transport, KafkaTransport)
            checks["broker"] = "ok" if await self.transport.ping() else "error: unreachable"
        else:
            checks["broker"] = "in-process"

    async def stop(self) -> None:
        self._stop.set()
        # Every background task returns at its next check of the stop event; only what overruns
        # the grace is cancelled. A task cancelled inside a transaction leaves its connection
        # invalidated mid-statement: on SQLite that connection could keep the write lock (a
        # closed connection whose statement is still referenced) until the garbage collector
        # got to it, and the next writer waited out its busy timeout.
        if self._tasks:
            _, overrunning = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
            for task in overrunning:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for action in self._on_stop:
            await action()
        await self.live.close()
        await self.transport.stop()
        await self.redis.aclose()
        await self.databases.dispose()
        if self.tracing is not None:
            await self.tracing.shutdown()  # last: flushes the spans of everything above


async def _oldest_unpublished(session: AsyncSession) -> datetime | None:
    """When the oldest unpublished outbox row was written (the partial index on unpublished ids
    finds it at once), or None when every row is published."""
    statement = (
        select(OutboxMessage.occurred_at)
        .where(OutboxMessage.published_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()
