"""The CronJob controller: Jobs created on a cron schedule, as Kubernetes' cronjob controller v2.

Handlers queue a CronJob's key when it changes and when one of its Jobs
(by controller ownerReference) does. `sync(key)` reads the CronJob and its
Jobs from the caches and, like `syncCronJob`: reconciles `status.active`
with the Jobs (a finished one leaves it with `SawCompletedJob`, a vanished
one with `MissingJob`; `lastSuccessfulTime` follows the latest completion),
trims finished Jobs beyond the history limits (oldest first, background
deletion), then, unless suspended or being deleted, finds the most recent
missed schedule time (more than 100 missed is a `TooManyMissedTimes`
event; one later than `startingDeadlineSeconds` is `MissSchedule`), applies
`concurrencyPolicy` (Forbid skips with `JobAlreadyActive`, Replace deletes
the active Jobs) and creates the Job for that time. The status is written
through the `status` subresource when it changed, and the key is requeued
for the next schedule time. Time comes from the context's clock, so unit
tests walk through hours of schedules with a ManualClock.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging

from minik.api.errors import ApiError
from minik.api.meta import controller_of, format_time, is_being_deleted, meta_of, parse_time
from minik.api.objects import JsonObject
from minik.api.resources import CRONJOBS, JOBS
from minik.controllers.context import ControllerContext
from minik.controllers.cronjob.jobs import (
    finished_condition,
    job_from_template,
    job_name,
    object_reference,
    start_time_order,
)
from minik.controllers.cronjob.schedule import (
    Missed,
    Schedule,
    ScheduleError,
    load_time_zone,
    most_recent_schedule_time,
    parse_schedule,
    requeue_after,
)
from minik.machinery.informer import OWNER_INDEX, Informer, key_of, split_key
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5


class CronJobController:
    """Creates each CronJob's Jobs on its schedule and keeps its status."""

    name = "cronjob"

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.events = ctx.events
        self.cronjobs: Informer[JsonObject] = ctx.informers.get(CRONJOBS)
        self.jobs: Informer[JsonObject] = ctx.informers.get(JOBS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.cronjobs.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                                  self._enqueue)
        self.jobs.add_handler(self._job_changed, lambda _old, new: self._job_changed(new),
                              self._job_changed)

    async def run(self) -> None:
        await self.cronjobs.wait_synced()
        await self.jobs.wait_synced()
        await run_workers(self.queue, self.sync, workers=DEFAULT_WORKERS,
                          metrics=self.ctx.metrics)

    def _enqueue(self, cronjob: JsonObject) -> None:
        self.queue.add(key_of(cronjob))

    def _job_changed(self, job: JsonObject) -> None:
        ref = controller_of(job)
        if ref is None or ref.get("kind") != "CronJob":
            return
        owner = self.cronjobs.indexer.get_by(meta_of(job).get("namespace"), ref["name"])
        if owner is not None and meta_of(owner).get("uid") == ref.get("uid"):
            self._enqueue(owner)

    async def sync(self, key: str) -> None:
        cached = self.cronjobs.indexer.get(key)
        if cached is None:
            return
        cronjob = copy.deepcopy(cached)
        uid = meta_of(cronjob).get("uid", "")
        jobs = [j for j in self.jobs.indexer.by_index(OWNER_INDEX, uid)
                if _owned_by_cronjob(j)]
        changed = await self._cleanup_finished_jobs(cronjob, jobs)
        after: float | None = None
        synced_changed, error = False, None
        try:
            after, synced_changed = await self._sync_cronjob(cronjob, jobs)
        except (ApiError, Requeue) as e:
            error, synced_changed = e, cronjob.get("status") != (cached.get("status") or {})
        if changed or synced_changed:
            namespace, name = split_key(key)
            await self.client.replace(CRONJOBS, namespace, name, cronjob, subresource="status")
        if after is not None:
            raise Requeue("next schedule", after=after)
        if error is not None:
            raise error

    async def _cleanup_finished_jobs(self, cronjob: JsonObject, jobs: list[JsonObject]) -> bool:
        spec = cronjob.get("spec") or {}
        limits = {"Complete": spec.get("successfulJobsHistoryLimit"),
                  "Failed": spec.get("failedJobsHistoryLimit")}
        changed = False
        for condition, limit in limits.items():
            if limit is None:
                continue
            finished = sorted((j for j in jobs if finished_condition(j) == condition),
                              key=start_time_order)
            for job in finished[:max(0, len(finished) - int(limit))]:
                changed = await self._delete_job(cronjob, job) or changed
        return changed

    async def _delete_job(self, cronjob: JsonObject, job: JsonObject) -> bool:
        md = meta_of(job)
        try:
            await self.client.delete(JOBS, md.get("namespace"), md["name"],
                                     propagation_policy="Background")
        except ApiError as e:
            if e.code != 404:
                self.events.record(cronjob, "Warning", "FailedDelete", f"Deleted job: {e}")
                return False
        _remove_active(cronjob, md.get("uid"))
        self.events.record(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {md['name']}")
        return True

    async def _reconcile_active(self, cronjob: JsonObject, jobs: list[JsonObject]) -> bool:
        status = cronjob.setdefault("status", {})
        active_uids = {ref.get("uid") for ref in status.get("active") or []}
        active_names = {ref.get("name") for ref in status.get("active") or []}
        changed = False
        for job in jobs:
            md = meta_of(job)
            condition = finished_condition(job)
            if md.get("uid") not in active_uids and condition is None:
                if md.get("name") not in active_names:
                    self.events.record(cronjob, "Warning", "UnexpectedJob",
                                       f"Saw a job that the controller did not create or "
                                       f"forgot: {md.get('name')}")
            elif md.get("uid") in active_uids and condition is not None:
                _remove_active(cronjob, md.get("uid"))
                self.events.record(cronjob, "Normal", "SawCompletedJob",
                                   f"Saw completed job: {md.get('name')}, "
                                   f"condition: {condition}")
                changed = True
            if condition == "Complete":
                done = parse_time((job.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = format_time(done)
                    changed = True
        children = {meta_of(j).get("uid") for j in jobs}
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref.get("namespace"), ref.get("name", ""))
            except ApiError as e:
                if e.code != 404:
                    raise
                self.events.record(cronjob, "Normal", "MissingJob",
                                   f"Active job went missing: {ref.get('name')}")
                _remove_active(cronjob, ref.get("uid"))
                changed = True
        return changed

    def _schedule(self, cronjob: JsonObject) -> Schedule | None:
        spec = cronjob.get("spec") or {}
        text, zone = str(spec.get("schedule", "")), spec.get("timeZone")
        if "TZ" in text:
            self.events.record(cronjob, "Warning", "UnsupportedSchedule",
                               f"CRON_TZ or TZ used in schedule {text!r} is not officially "
                               "supported, see https://kubernetes.io/docs/concepts/workloads/"
                               "controllers/cron-jobs/ for more details")
            zone = None
        try:
            return parse_schedule(text, zone)
        except ScheduleError as e:
            self.events.record(cronjob, "Warning", "UnparseableSchedule",
                               f"unparseable schedule: {text!r} : {e}")
            return None

    async def _sync_cronjob(self, cronjob: JsonObject,
                            jobs: list[JsonObject]) -> tuple[float | None, bool]:
        """(seconds until the next look or None, whether the status changed)."""
        changed = await self._reconcile_active(cronjob, jobs)
        spec, status = cronjob.get("spec") or {}, cronjob.setdefault("status", {})
        if is_being_deleted(cronjob):
            return None, changed
        if spec.get("timeZone"):
            try:
                load_time_zone(spec["timeZone"])
            except ScheduleError:
                self.events.record(cronjob, "Warning", "UnknownTimeZone",
                                   f"invalid timeZone: {spec['timeZone']!r}")
                return None, changed
        if spec.get("suspend"):
            return None, changed
        schedule = self._schedule(cronjob)
        if schedule is None:
            return None, changed
        now = self.clock.wall()
        earliest = (parse_time(status.get("lastScheduleTime"))
                    or parse_time(meta_of(cronjob).get("creationTimestamp")) or now)
        deadline = spec.get("startingDeadlineSeconds")
        try:
            _, scheduled, missed = most_recent_schedule_time(earliest, now, schedule, deadline)
        except ScheduleError as e:
            self.events.record(cronjob, "Warning", "InvalidSchedule",
                               f"invalid schedule: {spec.get('schedule')} : {e}")
            return None, changed
        next_look = requeue_after(earliest, now, schedule)
        if scheduled is None:
            return next_look, changed
        if missed is Missed.MANY:
            self.events.record(cronjob, "Warning", "TooManyMissedTimes",
                               "too many missed start times. Set or decrease "
                               ".spec.startingDeadlineSeconds or check clock skew")
        if deadline is not None and scheduled + dt.timedelta(seconds=deadline) < now:
            self.events.record(cronjob, "Warning", "MissSchedule",
                               "Missed scheduled time to start a job: "
                               f"{scheduled.strftime('%a, %d %b %Y %H:%M:%S %z')}")
            return next_look, changed
        name = job_name(meta_of(cronjob)["name"], scheduled)
        if any(ref.get("name") == name for ref in status.get("active") or []):
            return next_look, changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.events.record(cronjob, "Normal", "JobAlreadyActive",
                               "Not starting job because prior execution is running and "
                               "concurrency policy is Forbid")
            return next_look, changed
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    job = await self.client.get(JOBS, ref.get("namespace"), ref.get("name", ""))
                except ApiError as e:
                    self.events.record(cronjob, "Warning", "FailedGet", f"Get job: {e}")
                    raise
                if not await self._delete_job(cronjob, job):
                    raise Requeue(f"could not replace job {ref.get('name')}")
                changed = True
        zone = load_time_zone(spec.get("timeZone")) if "TZ" not in str(spec.get("schedule")) \
            else dt.UTC
        namespace = meta_of(cronjob).get("namespace")
        try:
            created = await self.client.create(JOBS, namespace,
                                               job_from_template(cronjob, scheduled, zone))
            self.events.record(cronjob, "Normal", "SuccessfulCreate",
                               f"Created job {meta_of(created)['name']}")
        except ApiError as e:
            if e.code != 409:
                self.events.record(cronjob, "Warning", "FailedCreate", f"Error creating job: {e}")
                raise
            created = await self.client.get(JOBS, namespace, name)
            ref = controller_of(created)
            if ref is None or ref.get("uid") != meta_of(cronjob).get("uid"):
                raise Requeue(f"job {name} already exists but is not owned by the cronjob") \
                    from e
            if finished_condition(created) is not None:
                return next_look, changed
        status.setdefault("active", []).append(object_reference(created))
        status["lastScheduleTime"] = format_time(scheduled)
        return requeue_after(scheduled, now, schedule), True


def _remove_active(cronjob: JsonObject, uid: str | None) -> None:
    status = cronjob.setdefault("status", {})
    status["active"] = [r for r in status.get("active") or [] if r.get("uid") != uid]
    if not status["active"]:
        del status["active"]


def _owned_by_cronjob(job: JsonObject) -> bool:
    ref = controller_of(job)
    return ref is not None and ref.get("kind") == "CronJob"
