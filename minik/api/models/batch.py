"""Run-to-completion workloads of batch/v1: Job and CronJob.

A Job's pods must not restart forever, so its template's restartPolicy is
OnFailure or Never; a missing one is the pod spec's default, Always, and
refused as such, as Kubernetes (which defaults before it validates) does; a
CronJob's schedule must be a five-field cron line or a descriptor such as
`@hourly`.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated

from pydantic import model_validator

from minik.api.errors import Cause
from minik.api.models.base import (
    K8sModel,
    NonNegative,
    Positive,
    checked,
    forbidden,
    invalid,
    join,
    not_supported,
    one_of,
    raise_any,
    required,
)
from minik.api.models.jobpolicy import (
    PodFailurePolicy,
    SuccessPolicy,
    per_index_causes,
    pod_failure_policy_causes,
    replacement_causes,
    success_policy_causes,
)
from minik.api.models.meta import (
    LabelSelector,
    ObjectMeta,
    StatusObject,
    selector_template_causes,
)
from minik.api.models.pod import PodTemplateSpec

JOB_RESTART_POLICIES = ("OnFailure", "Never")
CRON_DESCRIPTORS = (
    "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
)
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?/,\-]+")
_EVERY = re.compile(r"@every\s+([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")


def job_template_causes(template: PodTemplateSpec, path: str) -> list[Cause]:
    policy = template.spec.restart_policy or "Always"
    if policy in JOB_RESTART_POLICIES:
        return []
    return [not_supported(join(path, "spec.restartPolicy"), policy, JOB_RESTART_POLICIES)]


class JobSpec(K8sModel):
    parallelism: NonNegative | None = None
    completions: NonNegative | None = None
    active_deadline_seconds: Positive | None = None
    backoff_limit: NonNegative | None = None
    selector: LabelSelector | None = None
    manual_selector: bool | None = None
    template: PodTemplateSpec
    ttl_seconds_after_finished: NonNegative | None = None
    completion_mode: Annotated[str, one_of("NonIndexed", "Indexed")] | None = None
    suspend: bool | None = None
    pod_replacement_policy: str | None = None
    backoff_limit_per_index: NonNegative | None = None
    max_failed_indexes: NonNegative | None = None
    pod_failure_policy: PodFailurePolicy | None = None
    success_policy: SuccessPolicy | None = None

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        causes = job_template_causes(self.template, "template")
        causes += selector_template_causes(self.selector, self.template.labels(), "template")
        indexed = self.completion_mode == "Indexed"
        if indexed and self.completions is None:
            causes.append(required("completions",
                                   "when completion mode is Indexed"))
        causes += self._policy_causes(indexed)
        raise_any(causes)
        return self

    def _policy_causes(self, indexed: bool) -> list[Cause]:
        causes = per_index_causes(indexed=indexed, completions=self.completions,
                                  per_index=self.backoff_limit_per_index,
                                  max_failed=self.max_failed_indexes)
        if self.pod_failure_policy is not None:
            containers = {c.name for _, c in self.template.spec.all_containers()}
            causes += pod_failure_policy_causes(
                self.pod_failure_policy, containers=containers,
                per_index=self.backoff_limit_per_index is not None)
            if self.template.spec.restart_policy == "OnFailure":
                causes.append(invalid("template.spec.restartPolicy", "OnFailure",
                                      'only "Never" is supported when podFailurePolicy is '
                                      "specified"))
        if self.success_policy is not None:
            causes += success_policy_causes(self.success_policy, indexed=indexed,
                                            completions=self.completions or 0)
        causes += replacement_causes(self.pod_replacement_policy,
                                     has_failure_policy=self.pod_failure_policy is not None)
        return causes


class Job(StatusObject):
    spec: JobSpec


def schedule_causes(schedule: str) -> list[Cause]:
    """The checks of robfig/cron's standard parser, with its wording."""
    if not schedule:
        return [required()]
    if schedule.startswith(("TZ", "CRON_TZ")):
        return [invalid("", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                      "field instead")]
    text = schedule.strip()
    if text.startswith("@"):
        if text in CRON_DESCRIPTORS or _EVERY.fullmatch(text):
            return []
        return [invalid("", schedule, f"unrecognized descriptor: {text}")]
    fields = text.split()
    if len(fields) != 5:
        return [invalid("", schedule, f"expected exactly 5 fields, found {len(fields)}: "
                                      f"[{' '.join(fields)}]")]
    bad = next((f for f in fields if not _CRON_FIELD.fullmatch(f)), None)
    if bad is not None:
        return [invalid("", schedule, f"failed to parse int from {bad}")]
    return []


def time_zone_causes(time_zone: str) -> list[Cause]:
    """Kubernetes' validateTimeZone: an explicit IANA name that loads."""
    if not time_zone:
        return [invalid("", time_zone, "timeZone must be nil or non-empty string")]
    if time_zone.lower() == "local":
        return [invalid("", time_zone, "timeZone must be an explicit time zone as defined in "
                                       "https://www.iana.org/time-zones")]
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid("", time_zone, f"unknown time zone {time_zone}")]
    return []


class JobTemplateSpec(K8sModel):
    metadata: ObjectMeta | None = None
    spec: JobSpec


class CronJobSpec(K8sModel):
    schedule: Annotated[str, checked(schedule_causes)]
    time_zone: Annotated[str, checked(time_zone_causes)] | None = None
    starting_deadline_seconds: NonNegative | None = None
    concurrency_policy: Annotated[str, one_of("Allow", "Forbid", "Replace")] | None = None
    suspend: bool | None = None
    job_template: JobTemplateSpec
    successful_jobs_history_limit: NonNegative | None = None
    failed_jobs_history_limit: NonNegative | None = None

    @model_validator(mode="after")
    def _no_tz_in_schedule(self) -> CronJobSpec:
        if self.time_zone is not None and "TZ" in self.schedule:
            raise_any([forbidden("schedule", "may not use TZ or CRON_TZ in schedule when "
                                             "timeZone is set")])
        return self


class CronJob(StatusObject):
    spec: CronJobSpec
