"""What the API server does to a Job on create: Kubernetes' job strategy, for the selector.

Unless `spec.manualSelector` is true, the server labels the pod template with
`batch.kubernetes.io/controller-uid` and `batch.kubernetes.io/job-name` (and
the legacy `controller-uid` and `job-name`) and makes the selector match the
job's uid, so that no two Jobs ever claim each other's pods
(`generateSelector` in Kubernetes' `pkg/registry/batch/job/strategy.go`).
"""

from __future__ import annotations

from typing import Any

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


def generate_selector(job: dict[str, Any]) -> None:
    """Label the template and set the selector from the job's uid, unless manualSelector."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    md = job.get("metadata") or {}
    uid, name = str(md.get("uid", "")), str(md.get("name", ""))
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key, value in ((CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name),
                       (LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name)):
        labels.setdefault(key, value)
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {CONTROLLER_UID_LABEL: uid}}
