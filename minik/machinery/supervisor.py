"""Named, supervised background tasks.

Every long-running coroutine of a server runs under `Supervisor`: a crash is
logged with the task's name and the task is started again after a short,
growing delay (0.5 s doubling to 30 s, `minik.machinery.backoff`), never
silently lost. Stopping cancels all and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, sleep

log = logging.getLogger(__name__)

RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0


class Supervisor:
    """Starts named tasks and restarts them when they fail."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or LoopClock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already running")
        self._tasks[name] = asyncio.create_task(self._run(name, factory), name=name)

    async def _run(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        backoff = Backoff(base=RESTART_DELAY, cap=MAX_RESTART_DELAY, clock=self._clock)
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next()
                log.exception("task %s crashed; restarting in %.1fs", name, delay)
                await sleep(self._clock, delay)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
