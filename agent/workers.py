"""One worker per pod: pod work is serialised, and only the latest update counts.

`update(uid)` marks a pod dirty and wakes its worker (starting one if
needed). A worker runs the sync function until the pod is clean; a sync may
ask to run again after a delay (a backoff ending, a probe period), and may
say the pod is finished with, which ends the worker. A crash in a sync is
logged and retried after a short delay, never lost. `interrupt(uid)`
abandons a running sync for a pod being deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FAILED_SYNC_RETRY = 2.0


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync asks for next: run again after `requeue` seconds, or stop for good."""

    requeue: float | None = None
    finished: bool = False


Sync = Callable[[str], Awaitable[SyncResult]]


@dataclass(slots=True)
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    sync: asyncio.Task[SyncResult] | None = None


class PodWorkers:
    """Runs `sync(uid)` for each pod in its own named task."""

    def __init__(self, sync: Sync) -> None:
        self._sync = sync
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

    def _requeue(self, uid: str, worker: _Worker, delay: float) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
        worker.timer = asyncio.get_running_loop().call_later(delay, worker.wake.set)

    async def _run(self, uid: str, worker: _Worker) -> None:
        try:
            while True:
                await worker.wake.wait()
                worker.wake.clear()
                worker.sync = asyncio.create_task(self._sync(uid), name=f"pod-sync:{uid}")
                try:
                    result = await worker.sync
                except asyncio.CancelledError:
                    if _cancelling():
                        raise
                    result = SyncResult()  # interrupted; the wake is already set
                except Exception:
                    log.exception("syncing pod %s failed; retrying in %.0fs", uid,
                                  FAILED_SYNC_RETRY)
                    result = SyncResult(requeue=FAILED_SYNC_RETRY)
                finally:
                    worker.sync = None
                if result.finished and not worker.wake.is_set():
                    return
                if result.requeue is not None:
                    self._requeue(uid, worker, result.requeue)
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
