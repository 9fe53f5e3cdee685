"""What a Job's status should say, from its pods: Kubernetes' job tracking, pure.

Pods carry the `batch.kubernetes.io/job-tracking` finalizer while they run.
A finished pod is first written into `status.uncountedTerminatedPods`, then
its finalizer is removed, and only then is its uid moved into the
`succeeded` or `failed` count. A sync interrupted anywhere (a kill -9
included) resumes without counting a pod twice or missing one: a pod still
holding the finalizer is not counted yet, and a uid in the uncounted lists
whose pod lost its finalizer (or is gone) is counted exactly once.

Conditions follow Kubernetes 1.31+: `SuccessCriteriaMet` or `FailureTarget`
first, while the remaining pods are terminated; `Complete` or `Failed` (with
`completionTime` for Complete) once no pod is left running or uncounted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from minik.api.meta import (
    find_condition,
    format_time,
    is_being_deleted,
    is_pod_ready,
    is_pod_terminal,
    meta_of,
    parse_time,
    uid_of,
    with_condition,
)
from minik.api.objects import Condition, JsonObject, Pod
from minik.controllers.jobconditions import finish_condition
from minik.controllers.podcontrol import is_pod_active

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETE = "Complete"
FAILED = "Failed"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
SUSPENDED = "Suspended"
COMPLETIONS_REACHED = "CompletionsReached"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
MAX_POD_BACKOFF = 360.0
MAX_UNCOUNTED_PODS = 500
"""At most this many finished pods are recorded uncounted per status update (Kubernetes'
`MaxUncountedPods`): the status stays small, and one big Job does not starve the others."""

Job = JsonObject


def spec_of(job: Job) -> JsonObject:
    return job.get("spec") or {}


def status_of(job: Job) -> JsonObject:
    return job.get("status") or {}


def conditions_of(job: Job) -> list[Condition]:
    return list(status_of(job).get("conditions") or [])


def has_condition(job: Job, type_: str) -> bool:
    condition = find_condition(conditions_of(job), type_)
    return condition is not None and condition.get("status") == "True"


def is_finished(job: Job) -> bool:
    return finish_condition(job) is not None


def has_tracking_finalizer(pod: Pod) -> bool:
    return TRACKING_FINALIZER in (meta_of(pod).get("finalizers") or [])


def is_pod_succeeded(pod: Pod) -> bool:
    return (pod.get("status") or {}).get("phase") == "Succeeded"


def is_pod_failed(pod: Pod) -> bool:
    """Failed, or deleted before it finished (Kubernetes counts that pod as failed)."""
    if is_pod_terminal(pod):
        return not is_pod_succeeded(pod)
    return is_being_deleted(pod)


def is_finished_pod(pod: Pod) -> bool:
    return is_pod_terminal(pod) or is_being_deleted(pod)


def is_terminating(pod: Pod) -> bool:
    return not is_pod_terminal(pod) and is_being_deleted(pod)


def finish_time(pod: Pod) -> dt.datetime | None:
    """When the pod's last container terminated, or its deletion began."""
    ends = [parse_time(terminated.get("finishedAt"))
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if (terminated := (s.get("state") or {}).get("terminated")) is not None]
    known = [e for e in ends if e is not None]
    if known:
        return max(known)
    return parse_time(meta_of(pod).get("deletionTimestamp"))


def failures_since_success(pods: list[Pod], *, wait_for_failure: bool = False,
                           ) -> tuple[int, dt.datetime | None]:
    """Pods that failed after the last success, and when the latest of them finished.

    With `wait_for_failure` (`podReplacementPolicy: Failed`) a pod being
    deleted has not failed until its phase says so. Kubernetes keeps this
    back-off record in memory; minik reads it from the pods, which a Job
    keeps until it is deleted.
    """
    finished = [(t, is_pod_failed(p)) for p in pods
                if (is_pod_terminal(p) if wait_for_failure else is_finished_pod(p))
                and (t := finish_time(p)) is not None]
    last_success = max((t for t, failed in finished if not failed), default=None)
    failures = [t for t, failed in finished
                if failed and (last_success is None or t > last_success)]
    return len(failures), max(failures, default=None)


def pod_backoff(failures: int, base: float) -> float:
    """The delay before recreating a pod after `failures` failures: base doubling, capped."""
    if failures <= 0 or base <= 0:
        return 0.0
    return float(min(base * 2 ** (failures - 1), MAX_POD_BACKOFF))


@dataclass(slots=True)
class Tally:
    """The job's pods, sorted by what the status says about them."""

    active: list[Pod] = field(default_factory=list)
    ready: int = 0
    terminating: list[Pod] = field(default_factory=list)
    """Pods being deleted that have not finished yet."""
    newly_finished: list[Pod] = field(default_factory=list)
    """Finished pods still holding the finalizer and not yet in the uncounted lists."""
    to_release: list[Pod] = field(default_factory=list)
    """Finished pods whose uid is recorded uncounted: their finalizer can go."""


def only_replaces_failed(job: Job) -> bool:
    """`podReplacementPolicy: Failed`: a deleted pod is not finished until it has failed."""
    return spec_of(job).get("podReplacementPolicy") == "Failed"


def tally(job: Job, pods: list[Pod], *, ending: bool = False) -> Tally:
    """Sort the pods. When the Job is `ending` (it has its verdict), a deleted pod is finished
    even under `podReplacementPolicy: Failed`."""
    wait_for_failure = only_replaces_failed(job) and not ending
    uncounted = status_of(job).get("uncountedTerminatedPods") or {}
    recorded = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
    result = Tally()
    for pod in pods:
        if is_pod_active(pod):
            result.active.append(pod)
            result.ready += 1 if is_pod_ready(pod) else 0
        elif is_terminating(pod):
            result.terminating.append(pod)
        finished = is_pod_terminal(pod) or (is_being_deleted(pod) and not wait_for_failure)
        if finished and has_tracking_finalizer(pod):
            (result.to_release if uid_of(pod) in recorded else result.newly_finished).append(pod)
    return result


def record_uncounted(status: JsonObject, pods: list[Pod]) -> JsonObject:
    """Status with the uids of `pods` added to uncountedTerminatedPods."""
    uncounted = dict(status.get("uncountedTerminatedPods") or {})
    for pod in pods:
        which = "succeeded" if is_pod_succeeded(pod) else "failed"
        uids = list(uncounted.get(which) or [])
        if uid_of(pod) not in uids:
            uids.append(uid_of(pod))
        uncounted[which] = uids
    return {**status, "uncountedTerminatedPods": uncounted}


def flush_uncounted(status: JsonObject, still_tracked: set[str]) -> JsonObject:
    """Move uncounted uids whose pods no longer carry the finalizer into the counts."""
    uncounted = status.get("uncountedTerminatedPods") or {}
    result = dict(status)
    kept: JsonObject = {}
    for which in ("succeeded", "failed"):
        uids = list(uncounted.get(which) or [])
        stay = [u for u in uids if u in still_tracked]
        counted = len(uids) - len(stay)
        if counted:
            result[which] = int(result.get(which) or 0) + counted
        if stay:
            kept[which] = stay
    result["uncountedTerminatedPods"] = kept
    return result


def uncounted_total(status: JsonObject) -> int:
    uncounted = status.get("uncountedTerminatedPods") or {}
    return len(uncounted.get("succeeded") or []) + len(uncounted.get("failed") or [])


def counts(status: JsonObject) -> tuple[int, int]:
    """Succeeded and failed pods, counted or recorded as uncounted."""
    uncounted = status.get("uncountedTerminatedPods") or {}
    return (int(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or []),
            int(status.get("failed") or 0) + len(uncounted.get("failed") or []))


class JobCondition(Condition, total=False):
    lastProbeTime: str | None


def condition(type_: str, reason: str, message: str, now: dt.datetime) -> JobCondition:
    stamp = format_time(now)
    return {"type": type_, "status": "True", "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def with_job_condition(status: JsonObject, cond: Condition) -> JsonObject:
    return {**status, "conditions": with_condition(status.get("conditions") or [], cond)}
