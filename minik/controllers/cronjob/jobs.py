"""What the CronJob controller reads of its Jobs, and the Job it makes for a scheduled time.

Shaped like the helpers of Kubernetes' `pkg/controller/cronjob/utils.go`:
a Job is finished when its `Complete` or `Failed` condition is True; the
Job for a scheduled time is named `<cronjob>-<minutes since the epoch>`,
so that creating it twice (after a restart, or on a stale cache) is a 409
rather than a second run, and carries the scheduled time in the CronJob's
time zone in the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation.
"""

from __future__ import annotations

import copy
import datetime as dt

from minik.api.meta import meta_of, new_controller_ref, parse_time
from minik.api.objects import JsonObject
from minik.controllers.jobconditions import finish_condition

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def finished_condition(job: JsonObject) -> str | None:
    """`Complete` or `Failed` when the Job has finished with that condition True."""
    condition = finish_condition(job)
    return None if condition is None else str(condition["type"])


def job_name(cronjob_name: str, scheduled: dt.datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def start_time_order(job: JsonObject) -> tuple[int, dt.datetime, str]:
    """Sort key of Kubernetes' byJobStartTime: started Jobs oldest first, then by name."""
    started = parse_time((job.get("status") or {}).get("startTime"))
    name = str(meta_of(job).get("name", ""))
    if started is None:
        return (1, dt.datetime.min.replace(tzinfo=dt.UTC), name)
    return (0, started, name)


def job_from_template(cronjob: JsonObject, scheduled: dt.datetime,
                      zone: dt.tzinfo) -> JsonObject:
    """The Job that runs `cronjob` for `scheduled` (getJobFromTemplate2)."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    template_md = template.get("metadata") or {}
    annotations = dict(template_md.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(zone).isoformat() \
        .replace("+00:00", "Z")
    metadata: JsonObject = {
        "name": job_name(meta_of(cronjob)["name"], scheduled),
        "labels": dict(template_md.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [new_controller_ref(cronjob, api_version="batch/v1",
                                               kind="CronJob")],
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": copy.deepcopy(template.get("spec") or {})}


def object_reference(job: JsonObject) -> JsonObject:
    """The ObjectReference kept in `status.active`."""
    md = meta_of(job)
    return {"apiVersion": "batch/v1", "kind": "Job", "namespace": md.get("namespace"),
            "name": md.get("name"), "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion")}
