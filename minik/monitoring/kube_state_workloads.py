"""kube-state-metrics' workload series: Deployments, ReplicaSets, StatefulSets, DaemonSets,
Jobs and CronJobs (`internal/store/<kind>.go`), from cached objects.

Each kind's series carry `namespace` and the object's name under the kind's
label (`deployment`, `replicaset`, `statefulset`, `daemonset`, `job_name`,
`cronjob`). Counts missing from a status are 0, as kube-state-metrics reads
Go's zero values; optional spec fields (a Job's parallelism) give no series
when unset. A Job's `kube_job_status_failed` splits its failures by the
reason of its Failed condition as kube-state-metrics does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from minik.api.meta import created_at, name_of, namespace_of, parse_time
from minik.api.objects import (
    AnyObject,
    DaemonSet,
    Deployment,
    JsonObject,
    ReplicaSet,
    StatefulSet,
)
from minik.controllers.cronjob.schedule import ScheduleError, parse_schedule
from minik.monitoring.families import (
    CONDITION_STATUSES,
    Family,
    Field,
    add_conditions,
    created_family,
    field_families,
    flag,
    gauge,
    owner_family,
    timestamp,
)

JOB_FAILURE_REASONS = ("BackoffLimitExceeded", "DeadlineExceeded", "Evicted")
"""The Failed condition reasons kube-state-metrics gives a series of their own."""

GENERATION = "Sequence number representing a specific generation of the desired state."


def _labeller(kind_label: str) -> tuple[tuple[str, str], Callable[[AnyObject], list[str]]]:
    def values(obj: AnyObject) -> list[str]:
        return [namespace_of(obj) or "", name_of(obj)]
    return ("namespace", kind_label), values


def deployment_families(deployments: Sequence[Deployment]) -> Iterator[Family]:
    labels, values = _labeller("deployment")
    yield created_family(deployments, labels, values, "kube_deployment")
    yield from field_families(deployments, labels, values, [
        Field("kube_deployment_spec_replicas", "Number of desired pods for a deployment.",
              "spec", "replicas", 1.0),
        Field("kube_deployment_spec_paused", "Whether the deployment is paused and will not be "
              "processed by the deployment controller.", "spec", "paused"),
        Field("kube_deployment_metadata_generation", GENERATION, "metadata", "generation"),
        Field("kube_deployment_status_observed_generation",
              "The generation observed by the deployment controller.",
              "status", "observedGeneration"),
        Field("kube_deployment_status_replicas", "The number of replicas per deployment.",
              "status", "replicas"),
        Field("kube_deployment_status_replicas_available",
              "The number of available replicas per deployment.", "status",
              "availableReplicas"),
        Field("kube_deployment_status_replicas_ready",
              "The number of ready replicas per deployment.", "status", "readyReplicas"),
        Field("kube_deployment_status_replicas_unavailable",
              "The number of unavailable replicas per deployment.", "status",
              "unavailableReplicas"),
        Field("kube_deployment_status_replicas_updated",
              "The number of updated replicas per deployment.", "status", "updatedReplicas"),
    ])
    condition = gauge("kube_deployment_status_condition",
                      "The current status conditions of a deployment.",
                      [*labels, "reason", "condition", "status"])
    for deployment in deployments:
        for c in deployment.get("status", {}).get("conditions", []):
            for value, wanted in CONDITION_STATUSES:
                condition.add_metric([*values(deployment), c.get("reason", ""), c.get("type", ""),
                                      value], flag(c.get("status") == wanted))
    yield condition


def replicaset_families(replicasets: Sequence[ReplicaSet]) -> Iterator[Family]:
    labels, values = _labeller("replicaset")
    yield created_family(replicasets, labels, values, "kube_replicaset")
    yield from field_families(replicasets, labels, values, [
        Field("kube_replicaset_spec_replicas", "Number of desired pods for a ReplicaSet.",
              "spec", "replicas", 1.0),
        Field("kube_replicaset_metadata_generation", GENERATION, "metadata", "generation"),
        Field("kube_replicaset_status_observed_generation",
              "The generation observed by the ReplicaSet controller.",
              "status", "observedGeneration"),
        Field("kube_replicaset_status_replicas", "The number of replicas per ReplicaSet.",
              "status", "replicas"),
        Field("kube_replicaset_status_ready_replicas",
              "The number of ready replicas per ReplicaSet.", "status", "readyReplicas"),
        Field("kube_replicaset_status_fully_labeled_replicas",
              "The number of fully labeled replicas per ReplicaSet.", "status",
              "fullyLabeledReplicas"),
    ])
    yield owner_family(replicasets, labels, values, "kube_replicaset_owner",
                  "Information about the ReplicaSet's owner.")


def statefulset_families(statefulsets: Sequence[StatefulSet]) -> Iterator[Family]:
    labels, values = _labeller("statefulset")
    yield created_family(statefulsets, labels, values, "kube_statefulset")
    yield from field_families(statefulsets, labels, values, [
        Field("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.",
              "spec", "replicas", 1.0),
        Field("kube_statefulset_metadata_generation", "Sequence number representing a "
              "specific generation of the desired state for the StatefulSet.",
              "metadata", "generation"),
        Field("kube_statefulset_status_observed_generation",
              "The generation observed by the StatefulSet controller.",
              "status", "observedGeneration"),
        Field("kube_statefulset_status_replicas", "The number of replicas per StatefulSet.",
              "status", "replicas"),
        Field("kube_statefulset_status_replicas_available",
              "The number of available replicas per StatefulSet.", "status",
              "availableReplicas"),
        Field("kube_statefulset_status_replicas_current",
              "The number of current replicas per StatefulSet.", "status", "currentReplicas"),
        Field("kube_statefulset_status_replicas_ready",
              "The number of ready replicas per StatefulSet.", "status", "readyReplicas"),
        Field("kube_statefulset_status_replicas_updated",
              "The number of updated replicas per StatefulSet.", "status", "updatedReplicas"),
    ])


def daemonset_families(daemonsets: Sequence[DaemonSet]) -> Iterator[Family]:
    labels, values = _labeller("daemonset")
    yield created_family(daemonsets, labels, values, "kube_daemonset")
    yield from field_families(daemonsets, labels, values, [
        Field("kube_daemonset_metadata_generation", GENERATION, "metadata", "generation"),
        Field("kube_daemonset_status_current_number_scheduled",
              "The number of nodes running at least one daemon pod and are supposed to.",
              "status", "currentNumberScheduled"),
        Field("kube_daemonset_status_desired_number_scheduled",
              "The number of nodes that should be running the daemon pod.",
              "status", "desiredNumberScheduled"),
        Field("kube_daemonset_status_number_available",
              "The number of nodes that should be running the daemon pod and have one or more "
              "of the daemon pod running and available", "status", "numberAvailable"),
        Field("kube_daemonset_status_number_misscheduled",
              "The number of nodes running a daemon pod but are not supposed to.",
              "status", "numberMisscheduled"),
        Field("kube_daemonset_status_number_ready",
              "The number of nodes that should be running the daemon pod and have one or more "
              "of the daemon pod running and ready.", "status", "numberReady"),
        Field("kube_daemonset_status_number_unavailable",
              "The number of nodes that should be running the daemon pod and have none of the "
              "daemon pod running and available", "status", "numberUnavailable"),
        Field("kube_daemonset_status_observed_generation",
              "The most recent generation observed by the daemon set controller.",
              "status", "observedGeneration"),
        Field("kube_daemonset_status_updated_number_scheduled",
              "The total number of nodes that are running updated daemon pod",
              "status", "updatedNumberScheduled"),
    ])


def job_families(jobs: Sequence[JsonObject]) -> Iterator[Family]:
    labels, values = _labeller("job_name")
    info = gauge("kube_job_info", "Information about job.", labels)
    for job in jobs:
        info.add_metric(values(job), 1)
    yield info
    yield created_family(jobs, labels, values, "kube_job")
    yield owner_family(jobs, labels, values, "kube_job_owner", "Information about the Job's owner.")
    yield from field_families(jobs, labels, values, [
        Field("kube_job_spec_parallelism",
              "The maximum desired number of pods the job should run at any given time.",
              "spec", "parallelism", None),
        Field("kube_job_spec_completions",
              "The desired number of successfully finished pods the job should be run with.",
              "spec", "completions", None),
        Field("kube_job_spec_active_deadline_seconds",
              "The duration in seconds relative to the startTime that the job may be active "
              "before the system tries to terminate it.", "spec", "activeDeadlineSeconds", None),
        Field("kube_job_status_succeeded", "The number of pods which reached Phase Succeeded.",
              "status", "succeeded"),
        Field("kube_job_status_active", "The number of actively running pods.",
              "status", "active"),
    ])
    yield _job_failed(jobs, labels, values)
    complete = gauge("kube_job_complete", "The job has completed its execution.",
                     [*labels, "condition"])
    failed = gauge("kube_job_failed", "The job has failed its execution.",
                   [*labels, "condition"])
    start = gauge("kube_job_status_start_time",
                  "StartTime represents time when the job was acknowledged by the Job Manager.",
                  labels)
    completion = gauge("kube_job_status_completion_time",
                       "CompletionTime represents time when the job was completed.", labels)
    for job in jobs:
        status = job.get("status", {})
        add_conditions(complete, values(job), status.get("conditions"), "Complete")
        add_conditions(failed, values(job), status.get("conditions"), "Failed")
        if (started := timestamp(status.get("startTime"))) is not None:
            start.add_metric(values(job), started)
        if (ended := timestamp(status.get("completionTime"))) is not None:
            completion.add_metric(values(job), ended)
    yield from (complete, failed, start, completion)


def _job_failed(jobs: Sequence[JsonObject], labels: tuple[str, str],
                values: Callable[[AnyObject], list[str]]) -> Family:
    """Failures by the Failed condition's reason: a series per known reason (1 for the
    condition's own), else one with an empty reason counting the failed pods."""
    family = gauge("kube_job_status_failed",
                   "The number of pods which reached Phase Failed and the reason for failure.",
                   [*labels, "reason"])
    for job in jobs:
        status = job.get("status", {})
        failed = float(status.get("failed") or 0)
        if not failed:
            family.add_metric([*values(job), ""], 0)
            continue
        known = False
        for condition in status.get("conditions", []):
            if condition.get("type") != "Failed":
                continue
            for reason in JOB_FAILURE_REASONS:
                known = known or condition.get("reason") == reason
                family.add_metric([*values(job), reason], flag(condition.get("reason") == reason))
        if not known:
            family.add_metric([*values(job), ""], failed)
    return family


def cronjob_families(cronjobs: Sequence[JsonObject]) -> Iterator[Family]:
    labels, values = _labeller("cronjob")
    info = gauge("kube_cronjob_info", "Info about cronjob.",
                 [*labels, "schedule", "concurrency_policy", "timezone"])
    active = gauge("kube_cronjob_status_active",
                   "Active holds pointers to currently running jobs.", labels)
    last = gauge("kube_cronjob_status_last_schedule_time",
                 "LastScheduleTime keeps information of when was the last time the job was "
                 "successfully scheduled.", labels)
    success = gauge("kube_cronjob_status_last_successful_time",
                    "LastSuccessfulTime keeps information of when was the last time the job "
                    "was completed successfully.", labels)
    suspend = gauge("kube_cronjob_spec_suspend",
                    "Suspend flag tells the controller to suspend subsequent executions.", labels)
    for cronjob in cronjobs:
        key = values(cronjob)
        spec, status = cronjob.get("spec", {}), cronjob.get("status", {})
        info.add_metric([*key, spec.get("schedule", ""),
                         spec.get("concurrencyPolicy", "Allow"),
                         spec.get("timeZone") or "local"], 1)
        active.add_metric(key, len(status.get("active") or []))
        suspend.add_metric(key, flag(bool(spec.get("suspend"))))
        if (when := timestamp(status.get("lastScheduleTime"))) is not None:
            last.add_metric(key, when)
        if (when := timestamp(status.get("lastSuccessfulTime"))) is not None:
            success.add_metric(key, when)
    yield created_family(cronjobs, labels, values, "kube_cronjob")
    yield from (info, active, last, success, suspend, _next_schedule(cronjobs, labels, values))


def _next_schedule(cronjobs: Sequence[JsonObject], labels: tuple[str, str],
                   values: Callable[[AnyObject], list[str]]) -> Family:
    """The activation after the last one (or after creation), for CronJobs not suspended;
    none for a schedule the controller cannot read either."""
    family = gauge("kube_cronjob_next_schedule_time",
                   "Next time the cronjob should be scheduled. The time after lastScheduleTime, "
                   "or after the cron job's creation time if it's never been scheduled. Use "
                   "this to determine if the job is delayed.", labels)
    for cronjob in cronjobs:
        spec = cronjob.get("spec", {})
        since = (parse_time(cronjob.get("status", {}).get("lastScheduleTime"))
                 or created_at(cronjob))
        if spec.get("suspend") or since is None:
            continue
        try:
            schedule = parse_schedule(spec.get("schedule", ""), spec.get("timeZone"))
            family.add_metric(values(cronjob), schedule.next(since).timestamp())
        except ScheduleError:
            continue
    return family
