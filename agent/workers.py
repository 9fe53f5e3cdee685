"""One worker per pod: pod work is serialised, and only the latest update counts.

`update(uid)` marks a pod dirty and wakes its worker (starting one if
needed). A worker runs the sync function until the pod is clean. A sync
asks to run again the way every sync in minik does: it raises
`Requeue(after=seconds)` (a back-off ending, a status write to retry: at
that moment, and the pod's back-off starts over) or a bare `Requeue()`,
which, like a crash (logged first, never lost), is retried after the pod's
own growing back-off (`minik.machinery.backoff`: 2 s doubling to 30 s,
as the work queue rate-limits a key). A sync that returns normally saw
the pod as it is: the pod's back-off starts over and a retry scheduled by
an earlier sync is cancelled, since the sync it asked for has just run. A
worker with nothing to do and nothing scheduled ends; the next update
starts another. `interrupt(uid)` abandons a running sync for a pod being
deleted.

These are the kubelet's pod workers, not `minik.machinery.workqueue`
workers, by decision: their contract is the work queue's (one sync per
pod at a time, updates meanwhile collapse into one more sync, the latest
state wins), but each pod has a task of its own, so that a long sync (an
image pull, a graceful stop of up to 30 s) holds up only its own pod where
a queue's fixed pool of workers would hold up others, and a sync can be
abandoned when its pod is deleted. What they share with the work queue is
the retry signal, `Requeue`, and the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, Timer
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)

FAILED_SYNC_RETRY = 2.0
"""The first retry of a pod whose sync failed or asked for a rate-limited `Requeue()`."""
FAILED_SYNC_RETRY_CAP = 30.0
"""The longest such retry: a pod whose sync keeps failing is tried at least this often."""

Sync = Callable[[str], Coroutine[Any, Any, None]]
"""A pod's sync, by uid: a coroutine function, as each sync runs as a task of its own."""


@dataclass(slots=True)
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    timer: Timer | None = None
    task: asyncio.Task[None] | None = None
    sync: asyncio.Task[None] | None = None


class PodWorkers:
    """Runs `sync(uid)` for each pod in its own named task."""

    def __init__(self, sync: Sync, *, clock: Clock | None = None) -> None:
        self._sync = sync
        self._clock: Clock = clock or LoopClock()
        self._workers: dict[str, _Worker] = {}
        self._backoff = Backoff(base=FAILED_SYNC_RETRY, cap=FAILED_SYNC_RETRY_CAP,
                                clock=self._clock)
        self._closed = False

    def update(self, uid: str) -> None:
        if self._closed:
            return
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._workers[uid] = _Worker()
            worker.task = asyncio.create_task(self._run(uid, worker), name=f"pod-worker:{uid}")
        worker.wake.set()

    def syncing(self, uid: str) -> bool:
        """Whether the pod's sync is running right now."""
        worker = self._workers.get(uid)
        return worker is not None and worker.sync is not None

    def interrupt(self, uid: str) -> None:
        """Abandon the pod's running sync and sync again at once.

        For a pod being deleted: its deletion must not wait for an image pull
        or a long stop begun for a pod that is going away. Whatever the
        abandoned sync left half done, the next sync (or the relist) sees.
        """
        worker = self._workers.get(uid)
        if worker is not None and worker.sync is not None:
            worker.sync.cancel()
        self.update(uid)

    def _requeue(self, worker: _Worker, delay: float) -> None:
        self._cancel_timer(worker)

        def fire() -> None:
            worker.timer = None
            worker.wake.set()

        worker.timer = self._clock.call_later(delay, fire)

    def _cancel_timer(self, worker: _Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    async def _run(self, uid: str, worker: _Worker) -> None:
        try:
            while True:
                await worker.wake.wait()
                worker.wake.clear()
                worker.sync = asyncio.create_task(self._sync(uid), name=f"pod-sync:{uid}")
                try:
                    await worker.sync
                except asyncio.CancelledError:
                    if _cancelling():
                        raise
                    # interrupted; the wake is already set
                except Requeue as r:
                    if r.after is None:
                        self._requeue(worker, self._backoff.next(uid))
                    else:
                        self._backoff.reset(uid)
                        self._requeue(worker, r.after)
                except Exception:
                    delay = self._backoff.next(uid)
                    log.exception("syncing pod %s failed; retrying in %.0fs", uid, delay)
                    self._requeue(worker, delay)
                else:
                    self._backoff.reset(uid)
                    self._cancel_timer(worker)
                finally:
                    worker.sync = None
                if not worker.wake.is_set() and worker.timer is None:
                    return
        finally:
            self._cancel_timer(worker)
            if self._workers.get(uid) is worker:
                del self._workers[uid]

    async def close(self) -> None:
        self._closed = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not just a sync it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
