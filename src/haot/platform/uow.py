"""The unit of work owns one transaction: rolls back unless ``commit()`` is called, and writes the
events recorded during it to the outbox in that same transaction (so an event leaves if and only if
the state change it describes committed).

A unit of work opened with ``shared=True`` lets the units of work that other contexts open inside it
*join* its transaction, when they keep their tables in the same database: their ``commit()`` only
flushes and hands their events and after-commit actions to the shared unit, which commits (or rolls
back) everything at once. This is how the all-in-one deployment books a stay in one transaction with
the very code that, on separate databases, runs as a saga of one transaction per step (ADR 0013).
A joined unit that ends by an exception poisons the shared one: whatever it half wrote can never be
committed by a caller that caught the exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from haot.platform.events import Event, EventBody
from haot.platform.outbox import OutboxMessage


class JoinedUnitFailed(RuntimeError):
    """A unit of work that joined a shared transaction ended by an exception; the shared
    transaction must roll back (what the joined unit wrote may be half done)."""


# The shared unit of work of the running task, if any (see the module docstring).
_shared: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "haot_shared_unit_of_work", default=None
)


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        topic_prefix: str = "haot.",
        on_commit: Callable[[], None] | None = None,
        shared: bool = False,
    ) -> None:
        self._sessions = sessions
        self._topic_prefix = topic_prefix
        self._on_commit = on_commit
        self._shares = shared
        self._events: list[Event] = []
        self._after_commit: list[tuple[Callable[[], Awaitable[object]], bool]] = []
        self._session: AsyncSession | None = None
        self._outer: UnitOfWork | None = None
        self._token: contextvars.Token[UnitOfWork | None] | None = None
        self._joinable = False
        self._poisoned = False
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    def emit(self, event: EventBody | Event) -> None:
        """Record an event (its contract, or an envelope made of one with ``Event.of`` where its id
        must be chosen); it is written to the outbox when (and only if) this unit commits."""
        self._events.append(event if isinstance(event, Event) else Event.of(event))

    def after_commit(self, action: Callable[[], Awaitable[object]], *, wait: bool = False) -> None:
        """Run ``action`` once this unit has committed (never if it does not): awaited inside
        ``commit()`` with ``wait`` (cache invalidation the caller's next read relies on), else in
        the background. Best effort either way (failures are logged): anything that must happen
        goes through an event or a row that a job picks up."""
        self._after_commit.append((action, wait))

    @property
    def joined(self) -> bool:
        """True when this unit runs inside another's shared transaction."""
        return self._outer is not None

    async def __aenter__(self) -> Self:
        self._events = []
        self._after_commit = []
        self.committed = False
        outer = _shared.get()
        if outer is not None and outer._joinable and outer._sessions is self._sessions:
            self._outer = outer
            self._session = outer.session
            return self
        self._session = self._sessions()
        if self._shares:
            self._joinable = True
            self._poisoned = False
            self._token = _shared.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outer is not None:
            if exc_type is not None:
                self._outer._poisoned = True
            self._outer = None
            self._session = None
            return
        self._joinable = False
        if self._token is not None:
            _shared.reset(self._token)
            self._token = None
        # close() ends any open transaction with a rollback but, unlike rollback(), leaves loaded
        # objects readable (detached), so read-only use cases can return what they loaded.
        await self.session.close()
        self._session = None

    async def flush(self) -> None:
        await self.session.flush()

    async def commit(self) -> None:
        session = self.session
        if self._outer is not None:
            # Joined: the shared unit commits. Flushing now keeps the joined code's view of
            # constraints (an IntegrityError surfaces where it would have on its own).
            await session.flush()
            self._outer._events.extend(self._events)
            self._outer._after_commit.extend(self._after_commit)
            self._events = []
            self._after_commit = []
            self.committed = True
            return
        if self._poisoned:
            raise JoinedUnitFailed("a unit of work joined to this transaction failed")
        # Nothing joins once the commit has begun (after-commit actions open units of their own).
        self._joinable = False
        if self._events:
            session.add_all(
                OutboxMessage.from_event(event, self._topic_prefix) for event in self._events
            )
        await session.commit()
        self.committed = True
        had_events = bool(self._events)
        self._events = []
        if had_events and self._on_commit is not None:
            self._on_commit()
        actions, self._after_commit = self._after_commit, []
        for action, wait in actions:
            if wait:
                await _logged(action)
            else:
                _background(action)

    async def rollback(self) -> None:
        if self._outer is not None:
            raise JoinedUnitFailed("a joined unit of work cannot roll back the shared transaction")
        await self.session.rollback()
        self._events = []
        self._after_commit = []


_running: set[asyncio.Task[None]] = set()


async def _logged(action: Callable[[], Awaitable[object]]) -> None:
    try:
        await action()
    except Exception:
        structlog.get_logger(__name__).exception("after_commit_action_failed")


def _background(action: Callable[[], Awaitable[object]]) -> None:
    # A fresh context: the task must never join the shared unit of work it was started from.
    context = contextvars.copy_context()
    context.run(_shared.set, None)
    task = asyncio.get_running_loop().create_task(_logged(action), context=context)
    _running.add(task)  # keep a reference so the task is not garbage-collected mid-flight
    task.add_done_callback(_running.discard)


class UnitOfWorkFactory:
    """Makes units of work for one context's database; wired once in the app container."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        topic_prefix: str = "haot.",
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self._topic_prefix = topic_prefix
        self._on_commit = on_commit
        self._reader: AsyncEngine | None = None

    def __call__(self, *, shared: bool = False) -> UnitOfWork:
        """A new unit of work; ``shared`` lets units of other contexts on the same database
        join its transaction (see the module docstring)."""
        return UnitOfWork(
            self.sessions, topic_prefix=self._topic_prefix, on_commit=self._on_commit, shared=shared
        )

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a read that needs no transaction of its own: on PostgreSQL in
        autocommit (the statement, without a BEGIN and a ROLLBACK around it); on SQLite a plain
        connection. Inside a shared unit of work on the same database, that unit's connection,
        so the read sees what the transaction wrote."""
        outer = _shared.get()
        if outer is not None and outer._joinable and outer._sessions is self.sessions:
            yield await outer.session.connection()
            return
        if self._reader is None:
            engine: AsyncEngine = self.sessions.kw["bind"]
            postgres = engine.dialect.name == "postgresql"
            self._reader = (
                engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
            )
        async with self._reader.connect() as connection:
            yield connection

    def shares_database_with(self, other: UnitOfWorkFactory) -> bool:
        """Both factories open sessions on the same database (so one can join the other)."""
        return self.sessions is other.sessions
