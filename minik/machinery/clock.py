"""The one clock: where every component reads the time and schedules what comes later.

A `Clock` has two readings. `now()` is monotonic seconds, for intervals a
component measures itself (a back-off, a TTL, a deadline of its own);
`wall()` is a timezone-aware UTC datetime, for timestamps written to
objects (conditions, events, statuses) and for comparing with times that
come from outside (a container's `finishedAt`, a pod's
`deletionTimestamp`). `call_later` runs a callback after a delay, and
`sleep(clock, seconds)` awaits one.

`LoopClock` is the running event loop's time (and the system's wall time).
`ManualClock` moves only when a test calls `advance`, running due
callbacks in time order, so tests of delays, back-offs and deadlines never
sleep; its wall time is its monotonic reading taken as seconds since the
epoch, so the two always agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time, wall time, and delayed callbacks."""

    def now(self) -> float: ...

    def wall(self) -> dt.datetime: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's monotonic clock and the system's wall clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when a test calls `advance`; due callbacks run in time order."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._now, dt.UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.due, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not timer.cancelled:
                timer.callback()
        self._now = target

    @property
    def pending(self) -> int:
        return sum(1 for *_, timer in self._timers if not timer.cancelled)


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait `seconds` on `clock` (on a `ManualClock`: until a test advances it that far)."""
    done = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    timer = clock.call_later(seconds, wake)
    try:
        await done
    finally:
        timer.cancel()
