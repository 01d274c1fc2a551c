"""The unit of work owns one transaction: rolls back unless ``commit()`` is called, and writes the
events recorded during it to the outbox in that same transaction (so an event leaves if and only if
the state change it describes committed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.outbox import OutboxMessage


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        topic_prefix: str = "haot.",
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._topic_prefix = topic_prefix
        self._on_commit = on_commit
        self._events: list[Event] = []
        self._after_commit: list[tuple[Callable[[], Awaitable[object]], bool]] = []
        self._session: AsyncSession | None = None
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    def emit(self, event: Event) -> None:
        """Record an event; it is written to the outbox when (and only if) this unit commits."""
        self._events.append(event)

    def after_commit(self, action: Callable[[], Awaitable[object]], *, wait: bool = False) -> None:
        """Run ``action`` once this unit has committed (never if it does not): awaited inside
        ``commit()`` with ``wait`` (cache invalidation the caller's next read relies on), else in
        the background. Best effort either way (failures are logged): anything that must happen
        goes through an event or a row that a job picks up."""
        self._after_commit.append((action, wait))

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._events = []
        self._after_commit = []
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() ends any open transaction with a rollback but, unlike rollback(), leaves loaded
        # objects readable (detached), so read-only use cases can return what they loaded.
        await self.session.close()
        self._session = None

    async def flush(self) -> None:
        await self.session.flush()

    async def commit(self) -> None:
        session = self.session
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
    task = asyncio.get_running_loop().create_task(_logged(action))
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

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, topic_prefix=self._topic_prefix, on_commit=self._on_commit)
