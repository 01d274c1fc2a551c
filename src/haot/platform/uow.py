"""The unit of work owns one transaction: rolls back unless ``commit()`` is called, and writes the
events recorded during it to the outbox in that same transaction (so an event leaves if and only if
the state change it describes committed)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

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

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._events = []
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

    async def rollback(self) -> None:
        await self.session.rollback()
        self._events = []


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
