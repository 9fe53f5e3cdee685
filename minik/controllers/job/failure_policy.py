"""A Job's `podFailurePolicy`: what a failed pod means, as Kubernetes' `pod_failure_policy.go`.

Rules are tried in order; the first that matches decides:

- `onExitCodes` matches a container (of `containerName`, or any, init
  containers included) that terminated with a non-zero exit code `In` (or
  `NotIn`) the rule's values;
- `onPodConditions` matches when the pod has a condition of the pattern's
  type with its status (`DisruptionTarget` for an evicted or preempted pod).

Actions: `FailJob` fails the whole Job (reason `PodFailurePolicy`, with a
message naming the pod and rule), `Ignore` does not count the failure
toward `backoffLimit`, `Count` counts it as usual, `FailIndex` counts it
and fails its index (`per_index`, with `backoffLimitPerIndex`). No match
counts as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from minik.api.meta import meta_of
from minik.api.objects import JsonObject, Pod
from minik.controllers.job.status import is_pod_failed

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"


@dataclass(frozen=True, slots=True)
class Match:
    """What the policy says of one failed pod."""

    counts: bool = True
    action: str | None = None
    fail_job_message: str | None = None


def _exit_code_match(pod: Pod, requirement: JsonObject) -> tuple[str, int] | None:
    status = pod.get("status") or {}
    wanted = requirement.get("containerName")
    values = {int(v) for v in requirement.get("values") or []}
    negate = requirement.get("operator") == "NotIn"
    for container in [*(status.get("initContainerStatuses") or []),
                      *(status.get("containerStatuses") or [])]:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is None or (wanted is not None and container.get("name") != wanted):
            continue
        code = int(terminated.get("exitCode") or 0)
        if code != 0 and (code in values) != negate:
            return str(container.get("name")), code
    return None


def _condition_match(pod: Pod, patterns: list[JsonObject]) -> str | None:
    have = {(c.get("type"), c.get("status"))
            for c in (pod.get("status") or {}).get("conditions") or []}
    return next((str(p.get("type")) for p in patterns
                 if (p.get("type"), p.get("status", "True")) in have), None)


def match(policy: JsonObject | None, pod: Pod) -> Match:
    """Apply `policy` to a failed pod."""
    md = meta_of(pod)
    who = f"{md.get('namespace')}/{md.get('name')}"
    for index, rule in enumerate((policy or {}).get("rules") or []):
        action = str(rule.get("action"))
        if (requirement := rule.get("onExitCodes")) is not None:
            found = _exit_code_match(pod, requirement)
            if found is None:
                continue
            container, code = found
            message = (f"Container {container} for pod {who} failed with exit code {code} "
                       f"matching {action} rule at index {index}")
        elif (condition := _condition_match(pod, rule.get("onPodConditions") or [])) is not None:
            message = f"Pod {who} has condition {condition} matching {action} rule at index {index}"
        else:
            continue
        if action == IGNORE:
            return Match(counts=False, action=action)
        return Match(action=action, fail_job_message=message if action == FAIL_JOB else None)
    return Match()


def fail_job_message(spec: JsonObject, pods: list[Pod]) -> str | None:
    """The message of the first failed pod that a FailJob rule of the Job's policy matches."""
    policy = spec.get("podFailurePolicy")
    if policy is None:
        return None
    return next((m.fail_job_message for p in pods if is_pod_failed(p)
                 and (m := match(policy, p)).fail_job_message), None)
