"""One settings object for the whole process, read from ``HAOT_*`` environment variables and
``.env``."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CONTEXTS = ("identity", "lodging", "reservation", "payment", "point", "coupon", "review")

Environment = Literal["development", "test", "production"]

# The built-in fake PortOne's API secret (it is in this repository, so it protects nothing).
FAKE_PORTONE_API_SECRET = "fake-portone-api-secret"  # noqa: S105 (published on purpose)
# The JWT secret of the test suite (tests import it from here).
TEST_JWT_SECRET = "test-secret-" + "x" * 40

# Secrets published in this repository, its docs or its tests: anyone may know them, so a
# production process refuses each of them wherever it appears in its settings.
DEMO_SECRETS = frozenset({FAKE_PORTONE_API_SECRET, TEST_JWT_SECRET})


class RefusedInProduction(RuntimeError):
    """A command or feature that must never run with ``HAOT_ENV=production``."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HAOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = "development"
    public_base_url: str = "http://127.0.0.1:8000"

    # Storage and transports. Empty values select the embedded default.
    database_url: str = "sqlite+aiosqlite:///./var/haot.db"
    identity_database_url: str = ""
    lodging_database_url: str = ""
    reservation_database_url: str = ""
    payment_database_url: str = ""
    point_database_url: str = ""
    coupon_database_url: str = ""
    review_database_url: str = ""
    # Where a context that this process calls but does not serve listens, in a split deployment
    # (ADR 0018), e.g. http://127.0.0.1:8102; empty: served in this process, called in-process.
    lodging_url: str = ""
    coupon_url: str = ""
    point_url: str = ""
    payment_url: str = ""
    # Where the pages call the public API; empty: in-process, to the app itself (ADR 0017).
    web_api_url: str = ""
    # Connections per database per process, opened as needed and kept (no overflow).
    database_pool_size: int = Field(default=10, ge=1, le=100)
    database_echo: bool = False

    redis_url: str = ""
    kafka_bootstrap_servers: str = ""
    kafka_topic_prefix: str = "haot."
    kafka_consumer_group_prefix: str = "haot."
    kafka_topic_partitions: int = Field(default=6, ge=1, le=1000)
    kafka_topic_replication_factor: int = Field(default=1, ge=1, le=10)
    # A dead consumer's partitions move after the session timeout; tests use ~3000/500 (tansu).
    kafka_session_timeout_ms: int = Field(default=10000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3000, ge=100)

    # Security.
    jwt_secret: str = ""
    jwt_issuer: str = "haot"
    jwt_audience: str = "haot-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=300)

    # Rate limits: generous enough that a crowd of real users never meets them.
    # Log-in attempts per account from one IP a minute (per account and IP: a stranger's
    # attempts never lock the owner out), then growing delays after failed attempts (per
    # account and IP as well); password changes per user a minute, with the same delays.
    login_rate_per_minute: int = Field(default=10, ge=1)
    login_failures_before_delay: int = Field(default=5, ge=1)
    password_change_rate_per_minute: int = Field(default=5, ge=1)
    login_ip_rate_per_minute: int = Field(default=100, ge=1)
    rate_limit_enabled: bool = True

    # Live streams (server-sent events): open at once per user, across every process, and the
    # keep-alive interval (an idle stream's lease lapses after three of them).
    live_streams_per_user: int = Field(default=5, ge=1, le=100)
    live_keep_alive_seconds: float = Field(default=15.0, gt=0, le=60)

    # Scheduled jobs run by workers (tests switch them off and run jobs explicitly).
    jobs_schedule: bool = True

    # Outbox relay and consumers.
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_poll_interval_seconds: float = Field(default=0.5, gt=0)
    consumer_batch_size: int = Field(default=200, ge=1, le=5000)

    # Idempotency keys are kept this long; an in-flight key older than the lease is taken over.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # Purge jobs: published outbox rows kept this long; inbox rows (what makes a redelivered
    # event a no-op) this long, which must outlast any redelivery (the broker's retention).
    outbox_retention_hours: int = Field(default=24, ge=1)
    inbox_retention_days: int = Field(default=30, ge=1)
    idempotency_lease_seconds: int = Field(default=60, ge=1)

    # Coupons.
    coupon_claims_per_second: int = Field(default=5, ge=1, le=1000)

    # Points.
    point_earn_rate_percent: float = Field(default=1.0, ge=0, le=100)
    point_expiry_days: int = Field(default=365, ge=1, le=3650)
    point_refund_grace_days: int = Field(default=30, ge=1, le=365)

    # Search: answer from the in-memory offer index (ADR 0014) rather than SQL, over this many
    # days from today (about 10 bytes per room type and day, per process).
    search_index: bool = True
    search_index_days: int = Field(default=400, ge=90, le=800)  # >= the 60-day "from" price

    # Reservations.
    reservation_hold_minutes: int = Field(default=10, ge=1, le=24 * 60)
    max_pending_reservations_per_user: int = Field(default=5, ge=1, le=100)
    # "auto": book in one transaction when reservation, lodging, coupon, point and payment keep
    # their tables in one database (ADR 0013), else as a saga; "saga": always as a saga.
    booking_transaction: Literal["auto", "saga"] = "auto"

    # Calls between contexts (a split deployment, ADR 0018) carry short-lived tokens signed with
    # this key; empty: one derived from HAOT_JWT_SECRET under its own label (never the same key).
    service_token_secret: str = ""

    # Reviews: a completed stay may be reviewed (and its review edited or deleted) until this
    # many days after check-out.
    review_window_days: int = Field(default=30, ge=1, le=365)

    # PortOne (empty base: the built-in fake).
    portone_api_base: str = ""
    portone_api_secret: str = FAKE_PORTONE_API_SECRET
    portone_webhook_secret: str = ""
    portone_webhook_url: str = ""
    # The checkout page opens PortOne's browser SDK with these (from the PortOne console); the
    # built-in fake has its own checkout page and needs neither.
    portone_store_id: str = ""
    portone_channel_key: str = ""
    portone_browser_sdk_url: str = "https://cdn.portone.io/v2/browser-sdk.js"

    log_level: str = "INFO"
    log_json: bool = True

    # Traces (OpenTelemetry, OTLP over HTTP): off while the endpoint is empty, and then nothing of
    # haot's tracing (nor the SDK's traces) is even imported. The collector's address (spans go to
    # ``<endpoint>/v1/traces``), e.g. http://otel-collector:4318. The service name defaults to
    # ``haot`` (every context) or ``haot-<context>`` (one, or ``web``); the ratio samples new
    # traces and follows the caller's decision for the others (parent-based; unset: the SDK's
    # ``OTEL_TRACES_SAMPLER``, by default every trace). The SDK's own ``OTEL_*`` variables
    # (headers, timeout, compression, certificates, batching, resource attributes) still apply.
    otel_exporter_otlp_endpoint: str = ""
    otel_service_name: str = ""
    otel_traces_sampler_ratio: float | None = Field(default=None, ge=0, le=1)

    # Public surfaces. ``/metrics`` asks for ``Authorization: Bearer <metrics_token>`` when a token
    # is set; in production without one it is not served at all (404). ``/docs``, ``/redoc`` and
    # ``/openapi.json``: on by default outside production, off in production unless set true.
    metrics_token: str = ""
    api_docs: bool | None = None
    # Request bodies: the largest any route accepts, and the PortOne webhook's (checked before
    # its signature is).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Browser origins allowed to call the API from other sites (comma-separated; empty: none).
    cors_origins: str = ""

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.env != "production"

    @property
    def metrics_served(self) -> bool:
        return bool(self.metrics_token) or self.env != "production"

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_strong_enough(cls, value: str) -> str:
        if len(value.encode()) < 32:
            raise ValueError(
                "HAOT_JWT_SECRET must be at least 32 bytes (make run writes one into .env)"
            )
        return value

    @model_validator(mode="after")
    def _production_needs_real_backends(self) -> Settings:
        if self.env != "production":
            return self
        # The URLs configured: a process that opens no database (the pages alone) may leave
        # HAOT_DATABASE_URL at its SQLite default, which ``refuse_sqlite_in_production`` then
        # refuses where a process does open one.
        configured = [f"{c}_database_url" for c in CONTEXTS] + ["database_url"]
        for name in configured:
            if name in self.model_fields_set and getattr(self, name).startswith("sqlite"):
                raise ValueError(
                    f"production refuses SQLite: set HAOT_{name.upper()} to PostgreSQL"
                )
        if not self.portone_api_base:
            # The fake approves any payment for anyone who opens its checkout page.
            raise ValueError(
                "production refuses the built-in fake PortOne: set HAOT_PORTONE_API_BASE "
                "(https://api.portone.io) with HAOT_PORTONE_API_SECRET and "
                "HAOT_PORTONE_WEBHOOK_SECRET"
            )
        if not (self.portone_store_id and self.portone_channel_key):
            # Without them the checkout page cannot open PortOne: nobody could pay.
            raise ValueError(
                "production needs HAOT_PORTONE_STORE_ID and HAOT_PORTONE_CHANNEL_KEY "
                "(PortOne console) for the checkout page"
            )
        for name in ("jwt_secret", "portone_api_secret", "portone_webhook_secret"):
            if getattr(self, name) in DEMO_SECRETS:
                raise ValueError(
                    f"production refuses a published demo value for HAOT_{name.upper()}: "
                    "set a secret of your own"
                )
        return self

    @model_validator(mode="after")
    def _portone_webhook_secret_default(self) -> Settings:
        """Without a configured secret, the built-in fake and the adapter share one derived from
        the JWT secret: the same in every worker process, so ``make run`` verifies its webhooks."""
        if self.portone_webhook_secret:
            return self
        if self.portone_api_base and self.env == "production":
            raise ValueError("HAOT_PORTONE_WEBHOOK_SECRET is required with a real PortOne")
        derived = hmac.digest(
            self.jwt_secret.encode(), b"haot fake-portone webhook secret", "sha256"
        )
        self.portone_webhook_secret = "whsec_" + base64.b64encode(derived).decode()
        return self

    @model_validator(mode="after")
    def _service_token_secret_default(self) -> Settings:
        if not self.service_token_secret:
            derived = hmac.digest(self.jwt_secret.encode(), b"haot service tokens", "sha256")
            self.service_token_secret = base64.b64encode(derived).decode()
        return self

    def service_url_for(self, context: str) -> str:
        """Where ``context`` listens when another process serves it ("" when not configured)."""
        url: str = getattr(self, f"{context}_url", "")
        return url.rstrip("/")

    def database_url_for(self, context: str) -> str:
        """The database a context keeps its tables in: its own URL if set, else the shared one."""
        own: str = getattr(self, f"{context}_database_url", "")
        return own or self.database_url

    def refuse_sqlite_in_production(self, contexts: Sequence[str]) -> None:
        """Raises ``RefusedInProduction`` when a production process serving ``contexts`` would
        keep one of them, or the tables they share (idempotency keys, in HAOT_DATABASE_URL), in
        SQLite: HAOT_DATABASE_URL left at its default. Serving none (the pages alone), it opens
        no database and refuses nothing."""
        if self.env != "production":
            return
        for context in contexts:
            if self.database_url_for(context).startswith("sqlite"):
                raise RefusedInProduction(
                    f"production refuses SQLite for the {context} context: set "
                    f"HAOT_DATABASE_URL (or HAOT_{context.upper()}_DATABASE_URL) to PostgreSQL"
                )
        if contexts and self.database_url.startswith("sqlite"):
            raise RefusedInProduction(
                "production refuses SQLite for the shared tables (idempotency keys): set "
                "HAOT_DATABASE_URL to PostgreSQL"
            )

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def kafka_enabled(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.otel_exporter_otlp_endpoint.strip())

    @property
    def fake_portone_enabled(self) -> bool:
        """Empty ``HAOT_PORTONE_API_BASE``: the built-in fake, mounted at ``/fake-portone``;
        never in production, whatever else the settings say."""
        return not self.portone_api_base and self.env != "production"

    @property
    def portone_base_url(self) -> str:
        return self.portone_api_base or f"{self.public_base_url}/fake-portone"

    @property
    def webhook_url(self) -> str:
        return self.portone_webhook_url or f"{self.public_base_url}/api/v1/webhooks/portone"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
