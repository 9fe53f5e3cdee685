"""When a Job has succeeded, failed, is suspended or resumed: its conditions, pure.

Kubernetes' order of judgement (`syncJob`): a pod failure policy's FailJob
rule first, then the back-off limit (failed pods, and with restartPolicy
OnFailure the container restarts of running pods too), then
`activeDeadlineSeconds` counted from `startTime`, then an Indexed Job's
failed indexes (`per_index`), and only then success: a `successPolicy`
rule, or the completions reached.
A verdict is first an interim condition (`FailureTarget`,
`SuccessCriteriaMet`); the final one (`Failed`, or `Complete` with
`completionTime`) is added once no pod is running or terminating and every
finished pod has been counted.

Suspension (`spec.suspend`) sets `Suspended` (reason `JobSuspended`);
resuming sets it False (`JobResumed`) and restarts `startTime`, so that the
deadline counts only time spent running.
"""

from __future__ import annotations

import datetime as dt

from minik.api.meta import find_condition, format_time, parse_time
from minik.api.objects import JsonObject
from minik.controllers.job import indexed, per_index, success_policy
from minik.controllers.job import status as js
from minik.controllers.jobconditions import finish_condition

DEFAULT_BACKOFF_LIMIT = 6
DEADLINE_EXCEEDED = "DeadlineExceeded"
POD_FAILURE_POLICY = "PodFailurePolicy"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


def is_suspended(job: js.Job) -> bool:
    return js.spec_of(job).get("suspend") is True


def has_target(status: JsonObject) -> bool:
    probe = {"status": status}
    return js.has_condition(probe, js.SUCCESS_CRITERIA_MET) or \
        js.has_condition(probe, js.FAILURE_TARGET)


def restarts(tally: js.Tally) -> int:
    return sum(int(s.get("restartCount") or 0) for p in tally.active
               for s in [*((p.get("status") or {}).get("initContainerStatuses") or []),
                         *((p.get("status") or {}).get("containerStatuses") or [])])


def past_backoff_limit(job: js.Job, tally: js.Tally, failed: int) -> bool:
    """More failures than `backoffLimit`; with OnFailure, restarts reaching it count too."""
    spec = js.spec_of(job)
    limit = int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
    if failed > limit:
        return True
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    total = restarts(tally) + failed
    return total > 0 if limit == 0 else total >= limit


def deadline_remaining(job: js.Job, status: JsonObject, now: dt.datetime) -> float | None:
    """Seconds until `activeDeadlineSeconds` runs out (<= 0: it has); None without one."""
    deadline = js.spec_of(job).get("activeDeadlineSeconds")
    start = parse_time(status.get("startTime"))
    if deadline is None or start is None or is_suspended(job):
        return None
    return float(deadline) - (now - start).total_seconds()


def verdict(job: js.Job, status: JsonObject, tally: js.Tally, now: dt.datetime, *,
            fail_job_message: str | None = None) -> js.JobCondition | None:
    """The interim condition the Job has earned now, if any (and it has none yet)."""
    if has_target(status):
        return None
    succeeded, failed = js.counts(status)
    if fail_job_message is not None:
        return js.condition(js.FAILURE_TARGET, POD_FAILURE_POLICY, fail_job_message, now)
    if past_backoff_limit(job, tally, failed):
        return js.condition(js.FAILURE_TARGET, js.BACKOFF_LIMIT_EXCEEDED, BACKOFF_MESSAGE, now)
    remaining = deadline_remaining(job, status, now)
    if remaining is not None and remaining <= 0:
        return js.condition(js.FAILURE_TARGET, DEADLINE_EXCEEDED, DEADLINE_MESSAGE, now)
    spec = js.spec_of(job)
    if per_index.enabled(spec) and (failing := per_index.verdict(spec, status, now)):
        return failing
    if indexed.is_indexed(spec) and (met := success_policy.matched_rule(
            spec.get("successPolicy"), int(spec.get("completions") or 0),
            indexed.parse_indexes(status.get("completedIndexes")))):
        return js.condition(js.SUCCESS_CRITERIA_MET, success_policy.SUCCESS_POLICY, met, now)
    completions = spec.get("completions")
    done = succeeded >= int(completions) if completions is not None else \
        succeeded > 0 and not tally.active
    if done:
        return js.condition(js.SUCCESS_CRITERIA_MET, js.COMPLETIONS_REACHED, COMPLETE_MESSAGE,
                            now)
    return None


def final(status: JsonObject, tally: js.Tally, now: dt.datetime) -> js.JobCondition | None:
    """Complete or Failed, once the interim verdict is in and the Job's pods are all done."""
    uncounted = status.get("uncountedTerminatedPods") or {}
    if tally.active or tally.terminating or any(uncounted.values()):
        return None
    probe = {"status": status}
    if finish_condition(probe) is not None:
        return None
    conditions = status.get("conditions") or []
    target = find_condition(conditions, js.FAILURE_TARGET)
    if target is not None and target.get("status") == "True":
        return js.condition(js.FAILED, str(target.get("reason")), str(target.get("message")),
                            now)
    met = find_condition(conditions, js.SUCCESS_CRITERIA_MET)
    if met is not None and met.get("status") == "True":
        return js.condition(js.COMPLETE, str(met.get("reason")), str(met.get("message")), now)
    return None


def finished_event(cond: js.JobCondition) -> tuple[str, str, str]:
    """The event (type, reason, message) that a final condition is announced with."""
    if cond["type"] == js.COMPLETE:
        return "Normal", "Completed", "Job completed"
    return "Warning", str(cond.get("reason")), str(cond.get("message"))


def with_final(status: JsonObject, cond: js.JobCondition) -> JsonObject:
    status = js.with_job_condition(status, cond)
    if cond["type"] == js.COMPLETE:
        status["completionTime"] = cond.get("lastTransitionTime")
    return status


def suspension(job: js.Job, status: JsonObject,
               now: dt.datetime) -> tuple[JsonObject, str | None]:
    """Status with the Suspended condition as the spec says, and the event reason if it changed.

    Resuming restarts `startTime`; a Job that never ran gets its first one.
    """
    current = find_condition(status.get("conditions") or [], js.SUSPENDED)
    suspended = current is not None and current.get("status") == "True"
    if is_suspended(job):
        if suspended:
            return status, None
        cond = js.condition(js.SUSPENDED, "JobSuspended", "Job suspended", now)
        return js.with_job_condition(status, cond), "Suspended"
    if suspended:
        cond = js.condition(js.SUSPENDED, "JobResumed", "Job resumed", now)
        cond["status"] = "False"
        status = js.with_job_condition(status, cond)
        return {**status, "startTime": format_time(now)}, "Resumed"
    if not status.get("startTime"):
        status = {**status, "startTime": format_time(now)}
    return status, None
