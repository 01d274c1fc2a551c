"""``haot`` command line: serve, worker, migrate, seed, create-user, jobs, events."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import importlib.metadata
import json
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from haot.platform.errors import HaotError
from haot.platform.settings import CONTEXTS, RefusedInProduction, Settings, get_settings

if TYPE_CHECKING:
    from haot.platform.inbox import DeadLetter


# What ``haot serve --context`` accepts: a context, or the web pages alone ("web", which owns no
# tables and calls the API at HAOT_WEB_API_URL; ADR 0018).
PAGES = "web"
SERVABLE = (*CONTEXTS, PAGES)


def _contexts(name: str | None) -> tuple[str, ...]:
    if name is None:
        return CONTEXTS
    if name == PAGES:
        return ()
    if name not in CONTEXTS:
        raise SystemExit(f"unknown context {name!r}; choose from {', '.join(CONTEXTS)}")
    return (name,)


def served_base_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches ``haot serve --host H --port P`` at."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (naming the wildcard, not binding to it)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from haot.platform.observability import logging_config
    from haot.platform.redis import EMBEDDED_MISSING, embedded_redis_installed

    settings = get_settings()
    if "public_base_url" not in settings.model_fields_set:
        # Checkout links and the fake PortOne's webhooks must reach this very server.
        os.environ["HAOT_PUBLIC_BASE_URL"] = served_base_url(args.host, args.port)
        get_settings.cache_clear()
        settings = get_settings()
    if settings.embedded_redis and not embedded_redis_installed():
        raise SystemExit(f"haot: {EMBEDDED_MISSING}")
    if args.workers > 1 and settings.embedded_redis:
        raise SystemExit(
            "--workers > 1 needs a shared Redis (HAOT_REDIS_URL): the embedded one is per process"
        )
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="haot-metrics-")
    if args.context == PAGES and not settings.web_api_url:
        from haot.app import PAGES_ALONE_NEED_API_URL

        raise SystemExit(f"haot: {PAGES_ALONE_NEED_API_URL}")
    settings.refuse_sqlite_in_production(_contexts(args.context))
    if args.migrate and args.context != PAGES:
        _migrate(settings, _contexts(args.context))
    os.environ["HAOT_SERVE_CONTEXTS"] = args.context or ",".join(CONTEXTS)
    uvicorn.run(
        "haot.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # uvicorn's own lines as JSON through the root logger's handler (its default config
        # installs plain-text handlers); its access log stays off: the app logs each request.
        log_config=logging_config(settings.log_level, json=settings.log_json),
        log_level="warning",
        access_log=False,
        proxy_headers=True,
        lifespan="on",
    )


def app_from_env() -> object:
    """uvicorn factory (each worker process builds its own app)."""
    from haot.app import create_app

    served = os.environ.get("HAOT_SERVE_CONTEXTS", ",".join(CONTEXTS))
    if served == PAGES:
        app = create_app(contexts=(), pages=True, freeze_heap_when_warm=True)
    else:
        contexts = tuple(c for c in served.split(",") if c)
        app = create_app(contexts=contexts, freeze_heap_when_warm=True)
    # Everything built so far (modules, app, models) lives as long as the process: out of the
    # collector's reach, a full collection no longer scans those few hundred thousand objects
    # and stalls every request of the worker (measured: gen-2 passes of up to 240 ms -> 30 ms).
    gc.collect()
    gc.freeze()
    return app


def _migrate(settings: Settings, contexts: tuple[str, ...]) -> None:
    from haot.platform.migrate import migrate
    from haot.platform.observability import configure_logging

    settings.refuse_sqlite_in_production(contexts)
    configure_logging(settings.log_level, json=settings.log_json)  # alembic's lines as JSON
    migrate(settings, contexts=contexts)


def cmd_migrate(args: argparse.Namespace) -> None:
    _migrate(get_settings(), _contexts(args.context))
    print("migrated")


def cmd_worker(args: argparse.Namespace) -> None:
    from haot.bootstrap import build_platform
    from haot.platform.observability import configure_logging

    settings = get_settings()
    settings.refuse_sqlite_in_production(_contexts(args.context))
    configure_logging(settings.log_level, json=settings.log_json)

    async def run() -> None:
        from haot.platform.worker_http import WorkerProbes

        platform = build_platform(settings, contexts=_contexts(args.context))
        await platform.start()
        probes = None
        if args.metrics_port is not None:
            probes = WorkerProbes(
                settings, platform, host=args.metrics_host, port=args.metrics_port
            )
            await probes.start()
        platform.start_workers()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # Scraped until its consumers have stopped: their last counts are not lost.
        await platform.stop()
        if probes is not None:
            await probes.stop()

    asyncio.run(run())


def cmd_seed(args: argparse.Namespace) -> None:
    from haot.seed import seed

    asyncio.run(seed(get_settings()))


def _password(args: argparse.Namespace) -> str:
    """``--password P``, or a prompt (twice) on a terminal, or the first line of stdin: a
    password given as an argument is visible to every user of the machine (``ps``)."""
    if args.password is not None:
        return str(args.password)
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("haot: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_create_user(args: argparse.Namespace) -> None:
    from haot.bootstrap import build_platform
    from haot.identity.schemas import SignUp
    from haot.platform.auth import Role

    settings = get_settings()  # a configuration error is reported as one before the prompt
    password = _password(args)
    try:
        sign_up = SignUp(email=args.email, password=password, name=args.name or args.email)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"haot: {problems}") from None

    async def run() -> None:
        platform = build_platform(settings, contexts=("identity",))
        try:
            user = await platform.services["identity"].create_user(sign_up, Role(args.role))
            print(f"created {user.role} {user.email} ({user.id})")
        finally:
            await platform.stop()

    asyncio.run(run())


def cmd_jobs_run(args: argparse.Namespace) -> None:
    """Run one job now, as ``POST /admin/jobs/{name}/run`` does, and print its result."""
    from haot.bootstrap import build_platform
    from haot.platform.jobs import parse_as_of

    settings = get_settings()
    if args.as_of and settings.env == "production":
        raise SystemExit("haot: --as-of is not accepted in production")

    async def run() -> None:
        platform = build_platform(settings)
        try:
            await platform.start()
            result = await platform.jobs.run(
                args.name, as_of=parse_as_of(args.as_of), dry_run=args.dry_run
            )
            print(json.dumps(result, default=str, sort_keys=True))
        finally:
            await platform.stop()

    try:
        asyncio.run(run())
    except HaotError as exc:
        raise SystemExit(f"haot: {exc.detail}") from None


def cmd_events(args: argparse.Namespace) -> None:
    """List the dead letters (poison events the consumers parked), or apply one again once its
    cause is fixed; or have the identity context announce every account's name again."""
    from haot.bootstrap import build_platform

    settings = get_settings()

    async def run() -> int:
        platform = build_platform(settings, contexts=_contexts(args.context))
        try:
            if args.events_command == "announce-names":
                identity = platform.services.get("identity")
                if identity is None:
                    print("haot: announce-names runs with the identity context", file=sys.stderr)
                    return 2
                print(f"names announced: {await identity.announce_names()}")
                return 0
            consumers = {consumer.name: consumer for consumer in platform.consumers}
            if args.events_command == "dead-letters":
                for each in consumers.values():
                    for letter in await each.dead_letters(limit=args.limit):
                        print(json.dumps(_dead_letter_line(letter), sort_keys=True))
                return 0
            consumer = consumers.get(args.consumer)
            if consumer is None:
                print(f"haot: no consumer {args.consumer!r}: {sorted(consumers)}", file=sys.stderr)
                return 2
            applied = await consumer.retry_dead_letter(uuid.UUID(args.event_id))
            if applied is None:
                print(f"haot: {args.consumer} has no dead letter {args.event_id}", file=sys.stderr)
                return 1
            print("applied" if applied else "parked again (still does not decode)")
            return 0 if applied else 1
        finally:
            await platform.stop()

    if code := asyncio.run(run()):
        raise SystemExit(code)


def _dead_letter_line(letter: DeadLetter) -> dict[str, object]:
    return {
        "consumer": letter.consumer,
        "event_id": str(letter.event_id),
        "type": letter.type,
        "version": letter.version,
        "aggregate_id": letter.aggregate_id,
        "error": letter.error,
        "parked_at": letter.parked_at.isoformat(),
        "payload": letter.payload,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="haot", description="haot accommodation booking platform")
    parser.add_argument("--version", action="version", version=f"haot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API and web pages")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--context",
        choices=SERVABLE,
        help="serve one context only, or the pages alone (web), in a split deployment",
    )
    serve.add_argument("--migrate", action="store_true", help="migrate before serving")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run outbox relays, event consumers and jobs")
    worker.add_argument("--context", choices=CONTEXTS)
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve /metrics (HAOT_METRICS_TOKEN), /healthz and /readyz on this port",
    )
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--context", choices=CONTEXTS)
    migrate.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="load demo data (idempotent)")
    seed.set_defaults(func=cmd_seed)

    create = sub.add_parser("create-user", help="create an account of any role")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="else asked for (terminal) or read from stdin")
    create.add_argument("--name")
    create.add_argument("--role", default="USER", choices=["USER", "HOST", "ADMIN"])
    create.set_defaults(func=cmd_create_user)

    jobs = sub.add_parser("jobs", help="scheduled jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_run = jobs_sub.add_parser("run", help="run one job now and print its result")
    jobs_run.add_argument(
        "name",
        help="expire-holds, complete-stays, expire-points, reconcile-payments, reconcile-coupons",
    )
    jobs_run.add_argument("--as-of", help="ISO 8601 date or timestamp (not in production)")
    jobs_run.add_argument("--dry-run", action="store_true")
    jobs_run.set_defaults(func=cmd_jobs_run)

    events = sub.add_parser(
        "events", help="poison events the consumers parked; announcing names again"
    )
    events.add_argument("--context", choices=CONTEXTS)
    events_sub = events.add_subparsers(dest="events_command", required=True)
    letters = events_sub.add_parser("dead-letters", help="list them, one JSON object per line")
    letters.add_argument("--limit", type=int, default=100, help="per consumer")
    letters.set_defaults(func=cmd_events)
    retry = events_sub.add_parser("retry", help="apply one again, once its cause is fixed")
    retry.add_argument("consumer", help="the consumer that parked it, e.g. payment.reservations")
    retry.add_argument("event_id")
    retry.set_defaults(func=cmd_events)
    announce = events_sub.add_parser(
        "announce-names",
        help="every account's name as identity.user_renamed (once, after upgrading to a "
        "version whose hosts see guests' names; the workers relay them)",
    )
    announce.set_defaults(func=cmd_events)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("haot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def configuration_errors(exc: ValidationError) -> list[str]:
    """One line per problem, named by its environment variable, without pydantic's trace."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        lines.append(f"HAOT_{field.upper()}: {message}" if field else message)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValidationError as exc:
        for line in configuration_errors(exc):
            print(f"haot: configuration error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    except RefusedInProduction as exc:
        print(f"haot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except HaotError as exc:  # a refusal of the domain's (weak password, email taken, ...)
        print(f"haot: {exc.detail}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])
