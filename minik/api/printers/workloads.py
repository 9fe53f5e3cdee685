"""Workload controllers: Deployment, ReplicaSet, ReplicationController, StatefulSet,
DaemonSet, Job, CronJob, ControllerRevision and HorizontalPodAutoscaler.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.meta import parse_time
from minik.api.printers.base import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    SELECTOR,
    age_cell,
    col,
    containers_cells,
    name_cell,
    printer,
    template_cells,
)
from minik.api.printers.formatting import (
    bool_text,
    condition_true,
    field,
    format_labels,
    since,
)


@printer(
    "Deployment", NAME, col("Ready", "Number of the pod with ready state"),
    col("Up-to-date", "Total number of non-terminated pods with the desired template."),
    col("Available", "Total number of available pods."), AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _deployment(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    ready = f"{status.get('readyReplicas', 0)}/{field(obj, 'spec.replicas', 1)}"
    return [name_cell(obj), ready, status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), age_cell(obj, now),
            *template_cells(obj.get("spec") or {}, empty="")]


REPLICAS = (
    NAME, col("Desired", "Number of desired pods.", type="integer"),
    col("Current", "Number of most recently observed pods.", type="integer"),
    col("Ready", "Number of ready pods.", type="integer"), AGE, CONTAINERS, IMAGES, SELECTOR,
)


def _replicas(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    return [name_cell(obj), field(obj, "spec.replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), age_cell(obj, now)]


@printer("ReplicaSet", *REPLICAS)
def _replica_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [*_replicas(obj, now), *template_cells(obj.get("spec") or {})]


@printer("ReplicationController", *REPLICAS)
def _replication_controller(obj: dict[str, Any], now: datetime) -> list[Any]:
    """Like a ReplicaSet's, with the selector a plain label map (`labels.FormatLabels`)."""
    spec = obj.get("spec") or {}
    return [*_replicas(obj, now), *containers_cells(field(spec, "template.spec")),
            format_labels(spec.get("selector"))]


@printer("StatefulSet", NAME, col("Ready", "Number of the pod with ready state"), AGE,
         CONTAINERS, IMAGES)
def _stateful_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    ready = f"{field(obj, 'status.readyReplicas', 0)}/{field(obj, 'spec.replicas', 1)}"
    return [name_cell(obj), ready, age_cell(obj, now),
            *containers_cells(field(obj, "spec.template.spec"))]


@printer(
    "DaemonSet", NAME,
    *(col(n, f"{n} number of nodes running the daemon pod.", type="integer")
      for n in ("Desired", "Current", "Ready", "Up-to-date", "Available")),
    col("Node Selector", "Node labels the daemon pods are restricted to."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _daemon_set(obj: dict[str, Any], now: datetime) -> list[Any]:
    fields = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
              "updatedNumberScheduled", "numberAvailable")
    return [name_cell(obj), *(field(obj, f"status.{f}", 0) for f in fields),
            format_labels(field(obj, "spec.template.spec.nodeSelector")), age_cell(obj, now),
            *template_cells(obj.get("spec") or {})]


def _job_status(job: dict[str, Any]) -> str:
    status = job.get("status")
    if condition_true(status, "Complete"):
        return "Complete"
    if condition_true(status, "Failed"):
        return "Failed"
    if field(job, "metadata.deletionTimestamp"):
        return "Terminating"
    if condition_true(status, "Suspended"):
        return "Suspended"
    if condition_true(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


@printer(
    "Job", NAME, col("Status", "Status of the job."),
    col("Completions", "The number of pods which reached phase Succeeded."),
    col("Duration", "Time required to complete the job."), AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _job(job: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else since(start, end or now)
    return [name_cell(job), _job_status(job), completions, duration, age_cell(job, now),
            *template_cells(spec)]


@printer(
    "CronJob", NAME, col("Schedule", "The schedule in Cron format."),
    col("Timezone", "The time zone name for the given schedule."),
    col("Suspend", "Whether subsequent executions are suspended.", type="boolean"),
    col("Active", "Number of currently running jobs.", type="integer"),
    col("Last Schedule", "When the job was last successfully scheduled."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)
def _cron_job(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = status.get("lastScheduleTime")
    return [name_cell(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool_text(spec.get("suspend")), len(status.get("active") or []),
            since(last, now) if last else "<none>", age_cell(obj, now),
            *template_cells(field(spec, "jobTemplate.spec", {}))]


@printer(
    "ControllerRevision", NAME, col("Controller", "Controller of the object"),
    col("Revision", "The revision of the state this revision captures."), AGE,
)
def _controller_revision(obj: dict[str, Any], now: datetime) -> list[Any]:
    owners = field(obj, "metadata.ownerReferences", [])
    owner = next((o for o in owners if o.get("controller")), None)
    controller = "<none>"
    if owner:
        group = owner.get("apiVersion", "").rpartition("/")[0]
        kind = owner.get("kind", "") + (f".{group}" if group else "")
        controller = f"{kind.lower()}/{owner.get('name', '')}" if kind else owner.get("name", "")
    return [name_cell(obj), controller, obj.get("revision", 0), age_cell(obj, now)]


_METRIC_FIELDS = {"Resource": "resource", "ContainerResource": "containerResource",
                  "Pods": "pods", "Object": "object", "External": "external"}


def _hpa_metric(spec: dict[str, Any], status: dict[str, Any]) -> str:
    key = _METRIC_FIELDS.get(spec.get("type", ""))
    if key is None:
        return "<unknown type>"
    source, target = spec.get(key) or {}, field(spec, f"{key}.target", {})
    current = field(status, f"{key}.current", {})
    if target.get("averageValue") is not None:
        value = f"{current.get('averageValue', '<unknown>')}/{target['averageValue']}"
        if key in ("object", "external"):
            value += " (avg)"
    elif key in ("resource", "containerResource"):
        used = current.get("averageUtilization")
        wanted = target.get("averageUtilization")
        value = (f"{'<unknown>' if used is None else f'{used}%'}/"
                 f"{'<auto>' if wanted is None else f'{wanted}%'}")
    else:
        value = f"{current.get('value', '<unknown>')}/{target.get('value', '<unknown>')}"
    return f"{source.get('name')}: {value}" if key in ("resource", "containerResource") else value


def _hpa_targets(hpa: dict[str, Any]) -> str:
    specs = field(hpa, "spec.metrics", [])
    statuses = field(hpa, "status.currentMetrics", [])
    if not specs:
        return "<none>"
    texts = [_hpa_metric(m, statuses[i] if i < len(statuses) else {}) for i, m in enumerate(specs)]
    shown = ", ".join(texts[:2])
    return f"{shown} + {len(texts) - 2} more..." if len(texts) > 2 else shown


@printer(
    "HorizontalPodAutoscaler", NAME, col("Reference", "The target scaled by this autoscaler."),
    col("Targets", "Current and target values of each metric."),
    col("MinPods", "The lower limit of replicas."), col("MaxPods", "The upper limit of replicas."),
    col("Replicas", "The current number of replicas."), AGE,
)
def _horizontal_pod_autoscaler(hpa: dict[str, Any], now: datetime) -> list[Any]:
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [name_cell(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_targets(hpa),
            "<unset>" if minimum is None else str(minimum), spec.get("maxReplicas", 0),
            field(hpa, "status.currentReplicas", 0), age_cell(hpa, now)]
