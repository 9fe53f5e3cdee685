"""The Job controller: pods run to completion, each finished pod counted exactly once.

Shaped like Kubernetes' `pkg/controller/job`. Handlers on the shared Job
and pod informers compute keys (`minik.controllers.podevents`: a pod maps
to the Job of its controller reference, an orphan to the Jobs whose
selector matches it) and feed `ControllerExpectations`, so a sync on a lagging cache
never creates a pod twice. `sync(key)` re-reads the Job, claims its pods
(every phase: finished pods still count), records finished pods through
the tracking finalizer (`status`), judges the Job (`conditions`, with the
pod failure policy of `failure_policy`), and otherwise keeps `parallelism`
pods (at most the completions left; per index for Indexed Jobs, `indexed`)
running, or none while suspended. After failures, new pods wait
`pod_backoff` (the controller's `restart_backoff` base, doubling, capped at
6 minutes) counted from the last failure, as Kubernetes' pod failure
back-off does; with `backoffLimitPerIndex` each index counts its own
failures and waits its own back-off (`per_index`). The sync asks to be
requeued for that moment. An Indexed Job's `successPolicy` is judged by
`success_policy`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Sequence
from typing import cast

from minik.api.errors import ApiError
from minik.api.meta import (
    controller_of,
    is_being_deleted,
    meta_of,
    name_of,
    namespace_of,
    new_controller_ref,
    resource_version_of,
    uid_of,
)
from minik.api.objects import JsonObject, OwnerReference, Pod, PodTemplateSpec
from minik.api.resources import JOBS, PODS
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.job import conditions, failure_policy, indexed, per_index
from minik.controllers.job import status as js
from minik.controllers.job.status_writes import StatusWrites
from minik.controllers.podcontrol import PodControl, claim_pods, pods_to_delete, slow_start_batch
from minik.controllers.podevents import PodEvents
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5


def job_selector(job: js.Job) -> LabelSelector | None:
    raw = js.spec_of(job).get("selector")
    if not raw:
        return None
    return LabelSelector.from_spec(raw)


def tracked_template(job: js.Job) -> PodTemplateSpec:
    """The job's pod template with the tracking finalizer added to its pods."""
    template = cast("PodTemplateSpec", copy.deepcopy(js.spec_of(job).get("template") or {}))
    md = template.setdefault("metadata", {})
    md["finalizers"] = [*(md.get("finalizers") or []), js.TRACKING_FINALIZER]
    return template


class JobController:
    """Runs every Job's pods to completion."""

    name = "job"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS,
                 pod_backoff_base: float | None = None) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.events = ctx.events
        self.clock = ctx.clock
        self.workers = workers
        self.backoff_base = ctx.restart_backoff if pod_backoff_base is None else pod_backoff_base
        self.expectations = ControllerExpectations(clock=ctx.clock)
        self.status_writes = StatusWrites(ctx.clock)
        self.pod_control = PodControl(ctx.client, ctx.events)
        self.jobs: Informer[JsonObject] = ctx.informers.get(JOBS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.queue = WorkQueue(self.name, metrics=self.metrics, clock=ctx.clock)
        self.jobs.add_handler(self._job_added, self._job_updated, self._job_deleted)
        self.pod_events = PodEvents("Job", self.jobs.indexer, self.queue, self.expectations,
                                    selector=job_selector)
        self.pods.add_handler(self.pod_events.added, self.pod_events.updated,
                              self.pod_events.deleted)

    async def run(self) -> None:
        await self.informers.wait_synced(JOBS, PODS)
        for job in self.jobs.indexer.list():
            self.queue.add(key_of(job))
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    # ------------------------------------------------------------ handlers

    def _job_added(self, job: JsonObject) -> None:
        self.status_writes.observed(key_of(job), job)
        self.queue.add(key_of(job))

    def _job_updated(self, old: JsonObject, new: JsonObject) -> None:
        self.status_writes.observed(key_of(new), new)
        self.queue.add(key_of(new))

    def _job_deleted(self, job: JsonObject) -> None:
        self.expectations.forget(key_of(job))
        self.status_writes.forget(key_of(job))
        self.queue.add(key_of(job))

    # ---------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        """Reconcile one Job: count finished pods, judge it, run or stop pods, write status.

        A sync waits for the informer to deliver the controller's own last
        status write (`status_writes`). A transition's event (Suspended,
        Resumed, Completed, Failed) is recorded only once the status saying so
        is written: a sync whose write fails (409) announces nothing.
        """
        job = self.jobs.indexer.get(key)
        if job is None:
            self.expectations.forget(key)
            return
        if self.status_writes.awaited(key):
            return
        selector = job_selector(job)
        if selector is None or is_being_deleted(job):
            return
        if js.is_finished(job) and not self._tracked_pods(job):
            return
        satisfied = self.expectations.satisfied(key)
        pods = await claim_pods(self.pod_control, job, selector,
                                self.pods.indexer.list(namespace_of(job) or ""),
                                ref=self._controller_ref(job),
                                can_adopt=lambda: asyncio.sleep(0))
        job, status, capped = await self._track(job, pods)
        if per_index.enabled(js.spec_of(job)):
            status.setdefault("failedIndexes", "")
        tally = js.tally({**job, "status": status}, pods, ending=conditions.has_target(status))
        now = self.clock.wall()
        status = self._with_counts(status, tally)
        status, reason = conditions.suspension(job, status, now)
        transitions: list[tuple[str, str, str]] = []
        if reason is not None:
            transitions.append(("Normal", reason, f"Job {reason.lower()}"))
        fail_job = failure_policy.fail_job_message(js.spec_of(job), pods)
        if (target := conditions.verdict(job, status, tally, now, fail_job_message=fail_job)):
            status = js.with_job_condition(status, target)
        requeue: float | None = None
        error: Exception | None = None
        if conditions.has_target(status) or conditions.is_suspended(job):
            if tally.active and satisfied:
                await self._delete(key, job, tally.active)
            if not capped and (cond := conditions.final(status, tally, now)) is not None:
                status = conditions.with_final(status, cond)
                transitions.append(conditions.finished_event(cond))
        else:
            if satisfied:
                requeue, error = await self._manage(key, job, tally, status, pods)
            remaining = conditions.deadline_remaining(job, status, now)
            if remaining is not None:
                requeue = remaining if requeue is None else min(requeue, remaining)
        await self._write_status(job, status)
        for type_, event_reason, message in transitions:
            self.events.record(job, type_, event_reason, message)
        if error is not None:
            raise error
        if requeue is not None:
            raise Requeue("pod failure back-off or active deadline", after=max(0.0, requeue))

    def _tracked_pods(self, job: JsonObject) -> list[Pod]:
        return [p for p in self.pods.indexer.list(namespace_of(job) or "")
                if js.has_tracking_finalizer(p)
                and (ref := controller_of(p)) is not None and ref.get("uid") == uid_of(job)]

    def _controller_ref(self, job: JsonObject) -> OwnerReference:
        return new_controller_ref(job, api_version=JOBS.api_version, kind="Job")

    async def _track(self, job: JsonObject,
                     pods: list[Pod]) -> tuple[JsonObject, JsonObject, bool]:
        """Record finished pods uncounted, drop their finalizers, then count them.

        At most `MAX_UNCOUNTED_PODS` are recorded at once; the third value says
        that more are left for the next sync (which the status write brings).
        With `backoffLimitPerIndex`, the last failed pod of an index waiting
        for its replacement keeps its finalizer (and is counted later), so
        that its failure count reaches the replacement even if it is deleted.
        """
        status = dict(js.status_of(job))
        ending = conditions.has_target(status)
        tally = js.tally(job, pods, ending=ending)
        candidates = tally.newly_finished
        if per_index.enabled(js.spec_of(job)) and not ending:
            waiting = per_index.awaiting_replacement(js.spec_of(job), status, tally.active,
                                                     pods, candidates)
            candidates = [p for p in candidates if uid_of(p) not in waiting]
        room = max(0, js.MAX_UNCOUNTED_PODS - js.uncounted_total(status))
        newly = sorted(candidates, key=lambda p: indexed.index_of(p) or 0)[:room]
        if newly:
            status = self._record(job, status, newly)
            job = await self._write_status(job, status)
        releasing = tally.to_release + newly
        await asyncio.gather(*(self._remove_finalizer(p) for p in releasing))
        released = {uid_of(p) for p in releasing}
        still = {uid_of(p) for p in pods if js.has_tracking_finalizer(p)} - released
        return job, js.flush_uncounted(status, still), len(newly) < len(candidates)

    @staticmethod
    def _record(job: JsonObject, status: JsonObject, finished: list[Pod]) -> JsonObject:
        """Record finished pods: uncounted, or an Indexed Job's successes by their index.

        A failure that the pod failure policy ignores is not recorded: its pod
        is released uncounted.
        """
        spec = js.spec_of(job)
        policy = spec.get("podFailurePolicy")
        finished = [p for p in finished if js.is_pod_succeeded(p)
                    or failure_policy.match(policy, p).counts]
        if not indexed.is_indexed(spec):
            return js.record_uncounted(status, finished)
        succeeded = [p for p in finished if js.is_pod_succeeded(p)]
        failed = [p for p in finished if not js.is_pod_succeeded(p)]
        status = indexed.record_succeeded(status, succeeded, int(spec.get("completions") or 0))
        if per_index.enabled(spec):
            status = per_index.record_failed(status, spec, failed)
        return js.record_uncounted(status, failed)

    async def _remove_finalizer(self, pod: Pod) -> None:
        md = meta_of(pod)
        rest = [f for f in md.get("finalizers") or [] if f != js.TRACKING_FINALIZER]
        patch = {"metadata": {"finalizers": rest or None,
                              "resourceVersion": resource_version_of(pod)}}
        try:
            await self.client.patch(PODS, md.get("namespace"), md["name"], patch,
                                    patch_type="merge")
        except ApiError as e:
            if e.code != 404:
                raise

    @staticmethod
    def _with_counts(status: JsonObject, tally: js.Tally) -> JsonObject:
        status = {**status, "ready": tally.ready, "terminating": len(tally.terminating)}
        if tally.active:
            status["active"] = len(tally.active)
        else:
            status.pop("active", None)
        return status

    async def _manage(self, key: str, job: JsonObject, tally: js.Tally, status: JsonObject,
                      pods: list[Pod]) -> tuple[float | None, Exception | None]:
        """Delete surplus pods or create missing ones; the back-off wait if creation must wait."""
        spec = js.spec_of(job)
        succeeded, _ = js.counts(status)
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        active = len(tally.active)
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(0, min(parallelism, int(completions) - succeeded))
        held = tally.terminating if js.only_replaces_failed(job) else []
        indexes: Sequence[int | None]
        if indexed.is_indexed(spec):
            finished = (indexed.parse_indexes(status.get("completedIndexes"))
                        | per_index.failed_indexes(status))
            doomed, indexes = indexed.plan(
                tally.active, finished, int(completions or 0), want,
                held=frozenset(i for p in held if (i := indexed.index_of(p)) is not None))
        else:
            doomed = pods_to_delete(tally.active, active - want)
            indexes = [None] * max(0, want - active - len(held))
        if doomed:
            await self._delete(key, job, doomed)
            return None, None
        if not indexes:
            return None, None
        if per_index.enabled(spec):
            return await self._create_per_index(key, job, status, tally, pods,
                                                [i for i in indexes if i is not None])
        wait = self._backoff_remaining(job, pods)
        if wait > 0:
            return wait, None
        return None, await self._create(key, job, indexes)

    async def _create_per_index(self, key: str, job: JsonObject, status: JsonObject,
                                tally: js.Tally, pods: list[Pod],
                                indexes: list[int]) -> tuple[float | None, Exception | None]:
        """Start the indexes whose own back-off is over; the wait until the next one's is."""
        spec = js.spec_of(job)
        busy = (indexed.parse_indexes(status.get("completedIndexes"))
                | per_index.failed_indexes(status)
                | {i for p in tally.active if (i := indexed.index_of(p)) is not None})
        replaced = per_index.last_failed(spec, pods, busy)
        now = self.clock.wall()
        waits = {i: per_index.backoff_remaining(replaced.get(i), self.backoff_base, now)
                 for i in indexes}
        ready: list[int | None] = [i for i in indexes if waits[i] <= 0]
        later = min((w for w in waits.values() if w > 0), default=None)
        error = await self._create(key, job, ready, replaced=replaced) if ready else None
        return later, error

    def _backoff_remaining(self, job: JsonObject, pods: list[Pod]) -> float:
        """Seconds until a new pod may start, after the failures since the last success."""
        failures, last = js.failures_since_success(
            pods, wait_for_failure=js.only_replaces_failed(job))
        delay = js.pod_backoff(failures, self.backoff_base)
        if delay <= 0 or last is None:
            return 0.0
        return max(0.0, (last - self.clock.wall()).total_seconds() + delay)

    async def _create(self, key: str, job: JsonObject, indexes: Sequence[int | None], *,
                      replaced: dict[int, Pod] | None = None) -> Exception | None:
        """Create a pod per entry of `indexes`: a completion index, or None (NonIndexed).

        With `replaced` (backoffLimitPerIndex), each index's pod carries the
        failure counts of the pod it replaces.
        """
        count = len(indexes)
        self.expectations.expect_creations(key, count)
        template = tracked_template(job)
        ref = self._controller_ref(job)
        pending = iter(indexes)

        def create_next() -> Awaitable[Pod]:
            index = next(pending)
            if index is None:
                return self.pod_control.create(job, template, ref)
            for_index = indexed.template_for_index(name_of(job), template, index)
            if replaced is not None:
                counts = per_index.replacement_counts(js.spec_of(job), replaced.get(index))
                per_index.annotate(cast("JsonObject", for_index), counts)
            return self.pod_control.create(job, for_index, ref,
                                           prefix=indexed.generate_name(name_of(job), index))

        created, error = await slow_start_batch(count, create_next)
        for _ in range(count - created):
            self.expectations.creation_observed(key)
        return error

    async def _delete(self, key: str, job: JsonObject, victims: list[Pod]) -> None:
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        for pod in victims:
            try:
                if not await self.pod_control.delete(job, pod):
                    self.expectations.deletion_observed(key, key_of(pod))
            except ApiError:
                self.expectations.deletion_observed(key, key_of(pod))
                raise

    async def _write_status(self, job: JsonObject, status: JsonObject) -> JsonObject:
        if status == js.status_of(job):
            return job
        md = meta_of(job)
        try:
            written = await self.client.replace(JOBS, md.get("namespace"), name_of(job),
                                                {**job, "status": status}, subresource="status")
        except ApiError as e:
            if e.code == 404:
                return job
            raise
        key = key_of(written)
        self.status_writes.wrote(key, written, self.jobs.indexer.get(key))
        return written

