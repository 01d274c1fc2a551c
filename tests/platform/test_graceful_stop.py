"""Stopping the platform lets its background tasks return at their next check of the stop event
instead of cancelling them mid-transaction (a cancelled SQLite transaction could keep the write
lock until the garbage collector freed its connection: the flaky "database is locked" of issue 11
item 20); a task that overruns the grace is still cancelled."""

from __future__ import annotations

import asyncio

import pytest

from haot.platform import container
from haot.platform.container import Platform
from haot.platform.settings import Settings


async def test_background_tasks_finish_their_round_and_overrunning_ones_are_cancelled(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container, "STOP_GRACE_SECONDS", 0.5)
    platform = Platform(settings, contexts=("identity",))
    seen: list[str] = []

    async def polite(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # finishing the round it was in
        seen.append("polite finished")

    async def stubborn(stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("stubborn cancelled")
            raise

    platform.add_background("polite", polite)
    platform.add_background("stubborn", stubborn)
    try:
        await platform.start()
        platform.start_workers()
        await asyncio.sleep(0.05)
    finally:
        await platform.stop()
    assert sorted(seen) == ["polite finished", "stubborn cancelled"]
