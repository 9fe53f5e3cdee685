"""One worker per pod: pod work is serialised, and only the latest update counts.

`update(uid)` marks a pod dirty and wakes its worker (starting one if
needed). A worker runs the sync function until the pod is clean. A sync
asks to run again the way every sync in minik does: it raises
`Requeue(after=seconds)` (a back-off ending, a status write to retry); a
`Requeue()` without a delay, like a crash, is retried after
`FAILED_SYNC_RETRY` (a crash is logged first, never lost). A worker with
nothing to do and nothing scheduled ends; the next update starts another.
`interrupt(uid)` abandons a running sync for a pod being deleted.

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

from minik.machinery.clock import Clock, LoopClock, Timer
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)

FAILED_SYNC_RETRY = 2.0

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
        if worker.timer is not None:
            worker.timer.cancel()

        def fire() -> None:
            worker.timer = None
            worker.wake.set()

        worker.timer = self._clock.call_later(delay, fire)

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
                    self._requeue(worker, FAILED_SYNC_RETRY if r.after is None else r.after)
                except Exception:
                    log.exception("syncing pod %s failed; retrying in %.0fs", uid,
                                  FAILED_SYNC_RETRY)
                    self._requeue(worker, FAILED_SYNC_RETRY)
                finally:
                    worker.sync = None
                if not worker.wake.is_set() and worker.timer is None:
                    return
        finally:
            if worker.timer is not None:
                worker.timer.cancel()
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
