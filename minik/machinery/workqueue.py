"""The work queue of client-go (`util/workqueue`) for asyncio controllers.

Event handlers put `namespace/name` keys on the queue; workers take them
with `get()`, sync, and call `done()`. The queue guarantees what makes a
level-triggered controller simple:

- a key is processed by one worker at a time: a key added while it is being
  processed is queued again once `done()` is called;
- repeated adds of a key that is still waiting collapse into one;
- otherwise keys come out in the order they went in.

`add_after` delays an add; `add_rate_limited` delays it by a per-key
exponential back-off (`minik.machinery.backoff`, 5 ms doubling up to
1000 s) that `forget` resets.
Time comes from a `Clock` (`minik.machinery.clock`) so that tests drive
delays with `ManualClock` instead of sleeping.

A sync asks for another look in one way: it raises `Requeue()` (after the
key's growing back-off, like controller-runtime's `Result{Requeue: true}`)
or `Requeue(after=s)` (at a known moment, resetting the back-off, like
`RequeueAfter`). The worker does the queueing, so a sync never adds its own
key and then returns normally, which would make the worker forget the
back-off it just counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from minik.api.errors import ApiError
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, Timer
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)


class WorkQueue:
    """A deduplicating, per-key serialising, rate-limited queue of string keys."""

    def __init__(
        self, name: str, *, metrics: ControllerMetrics | None = None,
        base_delay: float = 0.005, max_delay: float = 1000.0, clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock: Clock = clock or LoopClock()
        self._metrics = metrics
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiting: dict[str, float] = {}
        self._timers: dict[str, Timer] = {}
        self._backoff = Backoff(base=base_delay, cap=max_delay, clock=self._clock)
        self._shutting_down = False
        self._ready = asyncio.Event()

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._metrics is not None:
            self._metrics.adds.labels(controller=self.name).inc()
        if key in self._processing:
            return
        self._queue.append(key)
        self._changed()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; the earliest of several delays wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        due = self._clock.now() + delay
        if key in self._waiting and self._waiting[key] <= due:
            return
        if key in self._timers:
            self._timers.pop(key).cancel()
        self._waiting[key] = due
        self._timers[key] = self._clock.call_later(delay, lambda: self._fire(key))

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        """Add `key` after its backoff: base_delay * 2**failures, capped at max_delay."""
        self.add_after(key, self._backoff.next(key))

    def backoff(self, failures: int) -> float:
        """The delay of a key's next rate-limited add after `failures` earlier ones."""
        return self._backoff.step(failures)

    def forget(self, key: str) -> None:
        """The key synced: its next failure starts again from base_delay."""
        self._backoff.reset(key)

    def num_requeues(self, key: str) -> int:
        return self._backoff.failures(key)

    async def get(self) -> str | None:
        """The next key to process; None once shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                return None
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        self._changed()
        return key

    def done(self, key: str) -> None:
        """Processing of `key` finished; it is queued again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
        self._changed()

    def __len__(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        """Refuse new adds, drop delayed ones; `get` hands out what is queued, then None."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()
        self._ready.set()

    def _changed(self) -> None:
        if self._queue:
            self._ready.set()
        if self._metrics is not None:
            self._metrics.depth.labels(controller=self.name).set(len(self._queue))


Sync = Callable[[str], Awaitable[None]]


async def run_worker(
    queue: WorkQueue, sync: Sync, *, metrics: ControllerMetrics | None = None,
    max_retries: int | None = None,
) -> None:
    """Take keys from `queue` and sync them until it shuts down.

    A sync that raises is logged and retried after the key's backoff (given up
    after `max_retries` retries, if set); one that returns resets the backoff.
    `Requeue` is honoured as its docstring says.
    """
    while (key := await queue.get()) is not None:
        try:
            await _sync_one(queue, sync, key, metrics, max_retries)
        finally:
            queue.done(key)


async def _sync_one(
    queue: WorkQueue, sync: Sync, key: str, metrics: ControllerMetrics | None,
    max_retries: int | None,
) -> None:
    try:
        if metrics is None:
            await sync(key)
        else:
            with metrics.reconcile(queue.name):
                await sync(key)
    except Requeue as r:
        log.debug("%s: %s synced again %s%s", queue.name, key,
                  "rate-limited" if r.after is None else f"after {r.after:.3f}s",
                  f": {r}" if str(r) else "")
        if r.after is None:
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            queue.add_after(key, r.after)
    except Exception as e:
        _log_failure(queue.name, key, e)
        if max_retries is not None and queue.num_requeues(key) >= max_retries:
            log.error("%s: giving up on %s after %d retries", queue.name, key, max_retries)
            queue.forget(key)
            return
        queue.add_rate_limited(key)
    else:
        queue.forget(key)


def _log_failure(name: str, key: str, error: Exception) -> None:
    """API errors (a 409 Conflict, say) are routine: one line. Anything else: a traceback."""
    if isinstance(error, ApiError | ConnectionError):
        log.warning("%s: sync of %s failed: %s", name, key, error)
    else:
        log.error("%s: sync of %s failed", name, key, exc_info=error)


async def run_workers(
    queue: WorkQueue, sync: Sync, *, workers: int = 1, metrics: ControllerMetrics | None = None,
    also: Iterable[Coroutine[Any, Any, None]] = (),
) -> None:
    """Run `workers` named workers on `queue` (and any `also` tasks) until cancelled.

    The queue outlives a cancelled run: keys added meanwhile wait for the next one.
    """
    async with asyncio.TaskGroup() as tasks:
        for n in range(workers):
            tasks.create_task(run_worker(queue, sync, metrics=metrics),
                              name=f"{queue.name}:worker-{n}")
        for index, coroutine in enumerate(also):
            tasks.create_task(coroutine, name=f"{queue.name}:task-{index}")
