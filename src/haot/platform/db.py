"""Database engines, the declarative base and column types shared by every context.

Each context may keep its tables in its own database (``HAOT_<CONTEXT>_DATABASE_URL``); engines are
shared per URL so all-in-one mode opens one pool. SQLite (embedded default) and PostgreSQL
(production) run the same code; the few dialect differences live here.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Table, Uuid, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from haot.platform.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite too (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True)


@functools.lru_cache(maxsize=64)
def insert_unless_present(dialect: str, table: Table, conflict: tuple[str, ...]) -> Any:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING`` the first key column, built
    once per (dialect, table): a row comes back only when it was inserted. Both engines share the
    syntax; the statement object is each dialect's own."""
    make = postgresql_insert if dialect == "postgresql" else sqlite_insert
    key = next(iter(table.primary_key.columns))
    return make(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(key)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE.

    A deferred SQLite transaction that reads and then writes can fail with "database is locked"
    without waiting; taking the write lock at BEGIN makes writers queue on the busy timeout instead.
    This follows SQLAlchemy's documented recipe for the pysqlite driver's transaction handling.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        # Error messages and logs must not carry emails, hashes or tokens bound to statements.
        hide_parameters=True,
        # A fixed pool: an overflow connection is closed whenever it comes back to a full pool, so
        # under steady load overflow meant a new PostgreSQL backend (a fork, milliseconds of the
        # server's CPU) every few requests; ``make bench`` counted over a hundred per run.
        pool_size=pool_size,
        max_overflow=0,
        # No pre-ping: it cost a round trip on every checkout (a third of a short transaction).
        # Disconnects are handled optimistically instead: the statement that meets a dropped
        # connection fails (503, retryable) and SQLAlchemy invalidates the pool, so the next
        # checkout opens a fresh connection; recycling retires connections before servers or
        # proxies time them out.
        pool_pre_ping=False,
        pool_recycle=1800,
    )


class Databases:
    """Engines and session factories per context, one engine per distinct URL."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engines: dict[str, AsyncEngine] = {}
        self._factories: dict[str, async_sessionmaker[AsyncSession]] = {}

    def url_for(self, context: str) -> str:
        return self._settings.database_url_for(context)

    def engine_for(self, context: str) -> AsyncEngine:
        url = self.url_for(context)
        if url not in self._engines:
            self._engines[url] = create_engine(
                url,
                pool_size=self._settings.database_pool_size,
                echo=self._settings.database_echo,
            )
        return self._engines[url]

    def sessions_for(self, context: str) -> async_sessionmaker[AsyncSession]:
        url = self.url_for(context)
        if url not in self._factories:
            self._factories[url] = async_sessionmaker(
                self.engine_for(context), expire_on_commit=False, autoflush=False
            )
        return self._factories[url]

    def distinct_urls(self, contexts: tuple[str, ...]) -> list[str]:
        return sorted({self.url_for(c) for c in contexts})

    def engines(self) -> list[AsyncEngine]:
        return list(self._engines.values())

    async def dispose(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        self._factories.clear()
