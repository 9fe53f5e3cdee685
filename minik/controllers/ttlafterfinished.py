"""TTL after finished: a finished Job with `ttlSecondsAfterFinished` is deleted when it runs out.

Shaped like Kubernetes' `pkg/controller/ttlafterfinished`. A Job needs
cleanup when it has `spec.ttlSecondsAfterFinished` and a True `Complete` or
`Failed` condition; its finish time is that condition's
`lastTransitionTime`. Adds and updates of such Jobs (not being deleted)
queue their key; the sync queues it again for the moment the TTL expires
and, once it has, re-reads the Job from the server (the cached TTL may be
stale) and deletes it with a uid precondition and Foreground propagation,
as Kubernetes does, so that its pods go by cascade before the Job does.
Time is the context's clock.
"""

from __future__ import annotations

import datetime as dt
import logging

from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, meta_of, parse_time
from minik.api.objects import JsonObject
from minik.api.resources import JOBS
from minik.controllers.context import ControllerContext
from minik.controllers.jobconditions import finish_condition
from minik.machinery.informer import Informer, key_of, split_key
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5
PROPAGATION = "Foreground"


class JobTTLError(Exception):
    """A finished Job whose finish time cannot be found."""


def needs_cleanup(job: JsonObject) -> bool:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    return ttl is not None and finish_condition(job) is not None


def expire_time(job: JsonObject) -> dt.datetime:
    """When the finished Job's TTL runs out."""
    condition = finish_condition(job) or {}
    finished = parse_time(condition.get("lastTransitionTime"))
    if finished is None:
        md = meta_of(job)
        raise JobTTLError(f"unable to find the time when the Job {md.get('namespace')}/"
                          f"{md.get('name')} finished")
    ttl = int((job.get("spec") or {})["ttlSecondsAfterFinished"])
    return finished + dt.timedelta(seconds=ttl)


class TTLAfterFinishedController:
    """Deletes finished Jobs once their `ttlSecondsAfterFinished` has passed."""

    name = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.jobs: Informer[JsonObject] = ctx.informers.get(JOBS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.jobs.add_handler(self._changed, lambda _old, new: self._changed(new))

    async def run(self) -> None:
        await self.jobs.wait_synced()
        await run_workers(self.queue, self.sync, workers=DEFAULT_WORKERS,
                          metrics=self.ctx.metrics)

    def _changed(self, job: JsonObject) -> None:
        if not is_being_deleted(job) and needs_cleanup(job):
            self.queue.add(key_of(job))

    def _expired(self, job: JsonObject) -> bool:
        """True once the TTL has run out; before that, Requeue for the moment it will."""
        if is_being_deleted(job) or not needs_cleanup(job):
            return False
        left = (expire_time(job) - self.clock.wall()).total_seconds()
        if left > 0:
            raise Requeue("ttl not expired yet", after=left)
        return True

    async def sync(self, key: str) -> None:
        job = self.jobs.indexer.get(key)
        if job is None or not self._expired(job):
            return
        namespace, name = split_key(key)
        try:
            fresh = await self.client.get(JOBS, namespace, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if not self._expired(fresh):
            return
        try:
            await self.client.delete(JOBS, namespace, name, propagation_policy=PROPAGATION,
                                     uid=meta_of(fresh).get("uid"))
        except ApiError as e:
            if e.code not in (404, 409):
                raise
