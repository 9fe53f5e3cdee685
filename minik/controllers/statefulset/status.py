"""A StatefulSet's status, counted from its pods as Kubernetes' controller counts them.

`replicas` counts created pods; `readyReplicas` the Running and Ready ones;
`availableReplicas` those ready for `minReadySeconds`; `currentReplicas` and
`updatedReplicas` the created, not terminating pods at the current and the
update revision. A rolling update is complete (`complete_rolling_update`)
when all `spec.replicas` pods exist, are ready and are at the update
revision: the update revision becomes the current one. The status is
written only when a counted field differs (`inconsistent_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from minik.api.objects import Pod, StatefulSet, StatefulSetStatus
from minik.controllers.history import revision_of
from minik.controllers.podcontrol import is_pod_available
from minik.controllers.statefulset.identity import (
    is_created,
    is_running_and_ready,
    is_terminating,
    min_ready_seconds,
    replicas_of,
    update_strategy_type,
)

COUNTS = ("replicas", "readyReplicas", "availableReplicas", "currentReplicas",
          "updatedReplicas")
COMPARED = (*COUNTS, "currentRevision", "updateRevision")


def count_pods(status: StatefulSetStatus, sts: StatefulSet, pods: Iterable[Pod],
               current: str, update: str, now: dt.datetime) -> None:
    """Set the counts of `status` from `pods` (`updateStatus`)."""
    counts = dict.fromkeys(COUNTS, 0)
    min_ready = min_ready_seconds(sts)
    for pod in pods:
        created = is_created(pod)
        if created:
            counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_pod_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if created and not is_terminating(pod):
            revision = revision_of(pod)
            counts["currentReplicas"] += revision == current
            counts["updatedReplicas"] += revision == update
    for name, value in counts.items():
        status[name] = value  # type: ignore[literal-required]


def complete_rolling_update(sts: StatefulSet, status: StatefulSetStatus) -> None:
    wanted = replicas_of(sts)
    if update_strategy_type(sts) == "RollingUpdate" and \
            status.get("updatedReplicas") == wanted and \
            status.get("readyReplicas") == wanted and status.get("replicas") == wanted:
        status["currentReplicas"] = status.get("updatedReplicas", 0)
        status["currentRevision"] = status.get("updateRevision", "")


def inconsistent_status(sts: StatefulSet, status: StatefulSetStatus) -> bool:
    """The status to write differs from the set's in a way worth a write."""
    old = sts.get("status") or {}
    if status.get("observedGeneration", 0) > old.get("observedGeneration", 0):
        return True
    if status.get("collisionCount", 0) != old.get("collisionCount", 0):
        return True
    return any(status.get(f) != old.get(f, 0 if f in COUNTS else None) for f in COMPARED)
