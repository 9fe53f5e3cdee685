"""A Deployment's status: its counts, and the Available and Progressing conditions.

Pure functions of the shapes of `minik.api.objects`, after Kubernetes'
`deployment/util` and `progress.go`: the status a deployment's ReplicaSets
add up to (`calculate_status`), with `Available` while at most
maxUnavailable replicas are missing; mid-rollout (`rollout_status`) the
`Progressing` condition, renewed while more replicas are updated, ready or
available, `NewReplicaSetAvailable` once complete and
`ProgressDeadlineExceeded` when `progressDeadlineSeconds` pass without
progress; a ReplicaSet's `ReplicaFailure` copied up; and when a stuck
rollout should be looked at again (`progress_check_after`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Literal

from minik.api.meta import (
    find_condition,
    format_time,
    generation_of,
    name_of,
    parse_time,
    with_condition,
    without_condition,
)
from minik.api.objects import (
    ConditionStatus,
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    ReplicaSet,
)
from minik.controllers.deployment.sizes import max_unavailable, replicas, status_count, total

DeploymentCount = Literal["replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                          "unavailableReplicas", "observedGeneration"]

NO_DEADLINE = 2**31 - 1

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"


# --------------------------------------------------------------- conditions


def new_condition(kind: str, state: ConditionStatus, reason: str, message: str,
                  now: dt.datetime) -> DeploymentCondition:
    stamp = format_time(now)
    return {"type": kind, "status": state, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: DeploymentStatus, condition: DeploymentCondition) -> None:
    """Replace the condition of its type, unless status and reason are unchanged."""
    status["conditions"] = with_condition(status.get("conditions"), condition)


def remove_condition(status: DeploymentStatus, kind: str) -> None:
    status["conditions"] = without_condition(status.get("conditions"), kind)


def progressing_of(d: Deployment) -> DeploymentCondition | None:
    """The deployment's stored Progressing condition."""
    return find_condition((d.get("status") or {}).get("conditions"), PROGRESSING)


def has_deadline(d: Deployment) -> bool:
    return d["spec"].get("progressDeadlineSeconds") not in (None, NO_DEADLINE)


# ------------------------------------------------------------------- status


def calculate_status(d: Deployment, all_rss: Iterable[ReplicaSet | None],
                     new_rs: ReplicaSet | None, now: dt.datetime) -> DeploymentStatus:
    all_rss = list(all_rss)
    available = total(all_rss, "availableReplicas")
    counts: dict[DeploymentCount, int] = {
        "replicas": total(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total(all_rss) - available),
    }
    status: DeploymentStatus = {"observedGeneration": generation_of(d)}
    for field, count in counts.items():
        if count:
            status[field] = count
    before = d.get("status") or {}
    status["conditions"] = copy.deepcopy(before.get("conditions") or [])
    if before.get("collisionCount") is not None:
        status["collisionCount"] = before["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                             "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def _count(status: DeploymentStatus, field: DeploymentCount) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    counts: tuple[DeploymentCount, ...] = ("updatedReplicas", "replicas", "availableReplicas")
    return (all(_count(status, field) == replicas(d) for field in counts)
            and _count(status, "observedGeneration") >= generation_of(d))


def deployment_progressing(d: Deployment, status: DeploymentStatus) -> bool:
    """Compared with the stored status: more updated, ready or available, or fewer old."""
    before = d.get("status") or {}
    grown: tuple[DeploymentCount, ...] = ("updatedReplicas", "readyReplicas", "availableReplicas")
    grew = any(_count(status, field) > _count(before, field) for field in grown)
    old_now = _count(status, "replicas") - _count(status, "updatedReplicas")
    return grew or old_now < _count(before, "replicas") - _count(before, "updatedReplicas")


def _deadline_at(d: Deployment, condition: DeploymentCondition) -> dt.datetime | None:
    since = parse_time(condition.get("lastUpdateTime"))
    if since is None:
        return None
    return since + dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))


def timed_out(d: Deployment, status: DeploymentStatus, now: dt.datetime) -> bool:
    condition = find_condition(status.get("conditions"), PROGRESSING)
    if not has_deadline(d) or condition is None:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline_at(d, condition)
    return deadline is not None and deadline < now


def _progress_condition(d: Deployment, status: DeploymentStatus, new_rs: ReplicaSet | None,
                        now: dt.datetime) -> None:
    subject = (f'ReplicaSet "{name_of(new_rs)}"' if new_rs
               else f'Deployment "{name_of(d)}"')
    current = progressing_of(d)
    if deployment_complete(d, status):
        set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{subject} has successfully progressed.", now))
    elif deployment_progressing(d, status):
        cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
        if current and current["status"] == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime")
        remove_condition(status, PROGRESSING)
        set_condition(status, cond)
    elif timed_out(d, status, now):
        set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                            f"{subject} has timed out progressing.", now))


def rollout_status(d: Deployment, all_rss: Iterable[ReplicaSet | None],
                   new_rs: ReplicaSet | None, now: dt.datetime) -> DeploymentStatus:
    """The status of a deployment mid-rollout, with its Progressing condition estimated."""
    all_rss = list(all_rss)
    status = calculate_status(d, all_rss, new_rs, now)
    if not has_deadline(d):
        remove_condition(status, PROGRESSING)
    current = progressing_of(d)
    complete = (status.get("replicas") == status.get("updatedReplicas") and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE)
    if has_deadline(d) and not complete:
        _progress_condition(d, status, new_rs, now)
    failures = [c for rs in [new_rs, *all_rss] if rs
                for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == REPLICA_FAILURE]
    if failures:
        failure = failures[0]
        condition: DeploymentCondition = {**failure,
                                          "lastUpdateTime": failure.get("lastTransitionTime")}
        set_condition(status, condition)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def progress_check_after(d: Deployment, status: DeploymentStatus,
                         now: dt.datetime) -> float | None:
    """Seconds until a stuck rollout should be checked against its deadline, if ever."""
    current = progressing_of(d)
    if not has_deadline(d) or current is None or current.get("reason") == TIMED_OUT:
        return None
    if deployment_complete(d, status):
        return None
    deadline = _deadline_at(d, current)
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds()) + 1.0
