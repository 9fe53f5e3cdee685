"""What the disruption controller and the eviction subresource both say about a budget.

The `DisruptionAllowed` condition (`pdbhelper.UpdateDisruptionAllowedCondition`),
set by `meta.SetStatusCondition`'s rule, and the pod condition
`DisruptionTarget` that says a pod is about to go for a disruption (an
eviction, a taint); both are written by the API server's eviction and by
controllers, so their words live here, once.
"""

from __future__ import annotations

import datetime as dt

from minik.api.meta import find_condition, format_time
from minik.api.objects import PodCondition, PodDisruptionBudgetStatus, StatusCondition

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS, INSUFFICIENT_PODS, SYNC_FAILED = "SufficientPods", "InsufficientPods", "SyncFailed"
DISRUPTION_TARGET = "DisruptionTarget"


def set_status_condition(conditions: list[StatusCondition] | None, condition: StatusCondition,
                         now: dt.datetime) -> list[StatusCondition]:
    """`meta.SetStatusCondition`: the transition time moves only with the status; reason,
    message and observedGeneration always follow."""
    previous = find_condition(conditions, condition["type"])
    kept = previous is not None and previous.get("status") == condition["status"]
    at = previous.get("lastTransitionTime") if kept and previous is not None else None
    stamped: StatusCondition = {**condition, "lastTransitionTime": at or format_time(now)}
    if previous is None:
        return [*(conditions or []), stamped]
    return [stamped if c is previous else c for c in conditions or []]


def allowed_condition(status: PodDisruptionBudgetStatus, now: dt.datetime) -> list[StatusCondition]:
    """The status's conditions with `DisruptionAllowed` following its `disruptionsAllowed`."""
    sufficient = status.get("disruptionsAllowed", 0) > 0
    condition: StatusCondition = {
        "type": DISRUPTION_ALLOWED, "status": "True" if sufficient else "False",
        "reason": SUFFICIENT_PODS if sufficient else INSUFFICIENT_PODS, "message": "",
        "observedGeneration": status.get("observedGeneration", 0)}
    return set_status_condition(status.get("conditions"), condition, now)


def disruption_target(reason: str, message: str, now: dt.datetime) -> PodCondition:
    """The pod condition `DisruptionTarget` True, as `podutil.UpdatePodCondition` stamps it."""
    return {"type": DISRUPTION_TARGET, "status": "True", "lastProbeTime": None,
            "lastTransitionTime": format_time(now), "reason": reason, "message": message}
