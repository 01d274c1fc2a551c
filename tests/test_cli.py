"""The command line as an operator uses it: version, accounts without a password in ``ps``, jobs
run by hand (issue 11, item 16), and poison events listed and retried (item 14)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from haot.platform.inbox import DeadLetter
from haot.platform.settings import TEST_JWT_SECRET


def haot(
    *args: str, database: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAOT_")}
    return subprocess.run(
        [sys.executable, "-m", "haot.cli", *args],
        env={
            **clean,
            "HAOT_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "HAOT_JWT_SECRET": TEST_JWT_SECRET,
            "HAOT_LOG_LEVEL": "WARNING",
            **env,
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=database.parent,
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "haot.db"
    migrated = haot("migrate", database=path)
    assert migrated.returncode == 0, migrated.stderr
    return path


def test_version(tmp_path: Path) -> None:
    result = haot("--version", database=tmp_path / "unused.db")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("haot ")


def test_create_user_reads_the_password_from_stdin(database: Path) -> None:
    created = haot(
        "create-user",
        "--email",
        "ops@haot.example",
        "--role",
        "ADMIN",
        database=database,
        stdin="a-long-enough-passphrase-42\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created ADMIN ops@haot.example" in created.stdout
    again = haot(
        "create-user", "--email", "ops@haot.example", database=database, stdin="other-pass-123\n"
    )
    assert again.returncode == 1
    assert again.stderr.startswith("haot: ")
    assert "Traceback" not in again.stderr
    weak = haot("create-user", "--email", "x@haot.example", database=database, stdin="short\n")
    assert weak.returncode == 1
    assert weak.stderr.strip() == "haot: Password must be at least 10 characters"


def test_jobs_run_prints_the_result_and_refuses_unknown_jobs(database: Path) -> None:
    ran = haot("jobs", "run", "expire-holds", "--as-of", "2030-01-01", database=database)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == {"expired": 0}
    unknown = haot("jobs", "run", "make-coffee", database=database)
    assert unknown.returncode != 0
    assert "unknown job 'make-coffee'" in unknown.stderr


def test_a_configuration_error_is_one_line(tmp_path: Path) -> None:
    result = haot(
        "migrate", database=tmp_path / "x.db", HAOT_MAX_PENDING_RESERVATIONS_PER_USER="1000"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("haot: configuration error: HAOT_MAX_PENDING_RESERVATIONS_PER_USER")


def test_serve_without_the_embedded_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fakeredis is the ``embedded`` extra: a deployment with a real Redis does not install it."""
    from haot import cli
    from haot.platform import redis as redis_module
    from haot.platform.settings import get_settings

    monkeypatch.setattr(redis_module, "embedded_redis_installed", lambda: False)
    # Recorded first, so that what ``haot serve`` writes into the environment is undone after
    # (left behind, it became every later test's public base URL).
    for name in ("HAOT_PUBLIC_BASE_URL", "HAOT_SERVE_CONTEXTS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("HAOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("HAOT_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.setenv("HAOT_REDIS_URL", "")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.main(["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert "pip install 'haot[embedded]'" in str(stopped.value)


def test_events_lists_dead_letters_and_retries_one_once_fixed(database: Path) -> None:
    """An operator's view of poison events: listed as JSON lines, retried by consumer and id."""
    event_id = uuid.uuid4()
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    sessions = async_sessionmaker(engine)
    # A payment event whose producer renamed ``amount``: the reservation consumer parked it.
    payload = {"payment_id": "pay-1", "reservation_id": str(uuid.uuid4()), "total": 5}

    async def park() -> None:
        async with sessions() as session:
            now = datetime.now(UTC)
            session.add(
                DeadLetter(
                    consumer="reservation.payments",
                    event_id=event_id,
                    type="payment.payment_paid",
                    version=1,
                    aggregate_id=payload["reservation_id"],
                    payload=payload,
                    occurred_at=now,
                    error="payment.payment_paid v1: amount: Field required",
                    parked_at=now,
                )
            )
            await session.commit()

    async def fix() -> None:
        async with sessions() as session:
            await session.execute(
                update(DeadLetter).values(payload={**payload, "amount": payload["total"]})
            )
            await session.commit()
        await engine.dispose()

    asyncio.run(park())
    listed = haot("events", "dead-letters", database=database)
    assert listed.returncode == 0, listed.stderr
    (line,) = [json.loads(text) for text in listed.stdout.strip().splitlines()]
    assert (line["consumer"], line["event_id"], line["type"]) == (
        "reservation.payments",
        str(event_id),
        "payment.payment_paid",
    )
    assert "amount" in line["error"]

    still_broken = haot("events", "retry", "reservation.payments", str(event_id), database=database)
    assert still_broken.returncode == 1
    assert "parked again" in still_broken.stdout

    asyncio.run(fix())
    retried = haot("events", "retry", "reservation.payments", str(event_id), database=database)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "applied"
    assert haot("events", "dead-letters", database=database).stdout.strip() == ""
    gone = haot("events", "retry", "reservation.payments", str(event_id), database=database)
    assert gone.returncode == 1
    assert "no dead letter" in gone.stderr
    unknown = haot("events", "retry", "nobody", str(event_id), database=database)
    assert unknown.returncode == 2


def test_serving_the_pages_alone_needs_the_api_address(tmp_path: Path) -> None:
    result = haot("serve", "--context", "web", "--port", "1", database=tmp_path / "x.db")
    assert result.returncode != 0
    assert "HAOT_WEB_API_URL" in result.stderr, result.stderr


def test_events_announce_names_writes_one_event_per_account(database: Path) -> None:
    for email in ("one@haot.example", "two@haot.example"):
        created = haot(
            "create-user", "--email", email, database=database, stdin="a-long-enough-passphrase\n"
        )
        assert created.returncode == 0, created.stderr
    announced = haot("events", "announce-names", database=database)
    assert announced.returncode == 0, announced.stderr
    assert announced.stdout.strip() == "names announced: 2"

    async def renamed() -> int:
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text("SELECT count(*) FROM outbox WHERE type = 'identity.user_renamed'")
                )
                return int(rows.scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(renamed()) == 2
    elsewhere = haot("events", "--context", "lodging", "announce-names", database=database)
    assert elsewhere.returncode == 2
    assert "identity context" in elsewhere.stderr
