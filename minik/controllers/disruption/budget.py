"""A PodDisruptionBudget's status from its pods: Kubernetes' disruption arithmetic.

A budget of `maxUnavailable`, or of a percentage `minAvailable`, needs the
summed scale of the controllers owning its pods (`expected`); an integer
`minAvailable` counts the matching pods themselves. Percentages round up,
as Kubernetes' `GetScaledValueFromIntOrPercent(..., true)`. A budget with
neither expects no healthy pod. `disruptionsAllowed` is
`currentHealthy - desiredHealthy`, and 0 while no pod is expected, so that a
budget whose first pods appear before its status is recomputed is safe.

`disruptedPods` holds the pods the eviction API let go and that have not
been seen deleted: for `DELETION_TIMEOUT` after the eviction they count as
unhealthy; after it they drop out of the map (with a `NotDeleted` warning
from the controller), and the controller rechecks the budget when the
earliest entry would expire.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from minik.api.disruption import (
    DISRUPTION_ALLOWED,
    INSUFFICIENT_PODS,
    SUFFICIENT_PODS,
    SYNC_FAILED,
    allowed_condition,
    set_status_condition,
)
from minik.api.meta import (
    find_condition,
    generation_of,
    is_being_deleted,
    is_pod_ready,
    name_of,
    parse_time,
)
from minik.api.objects import (
    Pod,
    PodDisruptionBudget,
    PodDisruptionBudgetSpec,
    PodDisruptionBudgetStatus,
    StatusCondition,
)
from minik.controllers.deployment.sizes import int_or_percent

DELETION_TIMEOUT = dt.timedelta(minutes=2)
"""How long an evicted pod may take to be deleted before the budget stops waiting for it."""


def needs_scale(spec: PodDisruptionBudgetSpec) -> bool:
    """Whether the budget is relative to its controllers' scale, not to its pod count."""
    return spec.get("maxUnavailable") is not None or isinstance(spec.get("minAvailable"), str)


def desired_health(spec: PodDisruptionBudgetSpec, pod_count: int,
                   scale: int | None) -> tuple[int, int]:
    """(expectedPods, desiredHealthy); `scale` is required when `needs_scale(spec)`."""
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected = scale or 0
        unavailable = int_or_percent(max_unavailable, expected, round_up=True)
        return expected, max(expected - unavailable, 0)
    if isinstance(min_available, int):
        return pod_count, min_available
    if isinstance(min_available, str):
        expected = scale or 0
        return expected, int_or_percent(min_available, expected, round_up=True)
    return 0, 0


def disrupted_pod_map(pods: list[Pod], pdb: PodDisruptionBudget,
                      now: dt.datetime) -> tuple[dict[str, str], dt.datetime | None, list[Pod]]:
    """The `disruptedPods` to keep, when to recheck, and the pods whose deletion is overdue.

    Entries of pods gone or being deleted are dropped; so are overdue ones.
    """
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: dt.datetime | None = None
    overdue: list[Pod] = []
    for pod in pods:
        if is_being_deleted(pod) or name_of(pod) not in recorded:
            continue
        at = parse_time(recorded[name_of(pod)])
        if at is None:
            continue
        expected_deletion = at + DELETION_TIMEOUT
        if expected_deletion < now:
            overdue.append(pod)
            continue
        kept[name_of(pod)] = recorded[name_of(pod)]
        recheck = expected_deletion if recheck is None else min(recheck, expected_deletion)
    return kept, recheck, overdue


def count_healthy(pods: list[Pod], disrupted: dict[str, str], now: dt.datetime) -> int:
    """Ready pods that are neither being deleted nor evicted within `DELETION_TIMEOUT`."""
    healthy = 0
    for pod in pods:
        if is_being_deleted(pod):
            continue
        at = parse_time(disrupted[name_of(pod)]) if name_of(pod) in disrupted else None
        if at is not None and at + DELETION_TIMEOUT > now:
            continue
        healthy += is_pod_ready(pod)
    return healthy


@dataclass(frozen=True, slots=True)
class Health:
    """What a sync counted."""

    current: int
    desired: int
    expected: int
    disrupted: dict[str, str]


def conditions_up_to_date(pdb: PodDisruptionBudget) -> bool:
    """`pdbhelper.ConditionsAreUpToDate`."""
    status = pdb.get("status") or {}
    condition = find_condition(status.get("conditions"), DISRUPTION_ALLOWED)
    observed = status.get("observedGeneration")
    if condition is None or observed != generation_of(pdb):
        return False
    if condition.get("observedGeneration") != observed:
        return False
    if status.get("disruptionsAllowed", 0) > 0:
        return (condition.get("status"), condition.get("reason")) == ("True", SUFFICIENT_PODS)
    return (condition.get("status"), condition.get("reason")) == ("False", INSUFFICIENT_PODS)


def budget_status(pdb: PodDisruptionBudget, health: Health,
                  now: dt.datetime) -> PodDisruptionBudgetStatus | None:
    """The status to write, or None when the stored one is already it (`updatePdbStatus`)."""
    allowed = health.current - health.desired
    if health.expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    generation = generation_of(pdb)
    if (old.get("currentHealthy"), old.get("desiredHealthy"), old.get("expectedPods"),
            old.get("disruptionsAllowed"), old.get("disruptedPods") or {},
            old.get("observedGeneration")) == (
            health.current, health.desired, health.expected, allowed, health.disrupted,
            generation) and conditions_up_to_date(pdb):
        return None
    status: PodDisruptionBudgetStatus = {
        "observedGeneration": generation, "disruptionsAllowed": allowed,
        "currentHealthy": health.current, "desiredHealthy": health.desired,
        "expectedPods": health.expected, "conditions": old.get("conditions") or [],
    }
    status["conditions"] = allowed_condition(status, now)
    if health.disrupted:
        status["disruptedPods"] = health.disrupted
    return status


def failed_status(pdb: PodDisruptionBudget, message: str,
                  now: dt.datetime) -> PodDisruptionBudgetStatus:
    """`failSafe`: no disruption allowed, condition `SyncFailed` with the error."""
    old = pdb.get("status") or {}
    condition: StatusCondition = {
        "type": DISRUPTION_ALLOWED, "status": "False", "reason": SYNC_FAILED,
        "message": message, "observedGeneration": old.get("observedGeneration", 0)}
    return {**old, "disruptionsAllowed": 0,
            "conditions": set_status_condition(old.get("conditions"), condition, now)}
