"""An HPA's status: conditions set as Kubernetes' `setCondition`, metric statuses, quantities.

A condition keeps its place in the list; its `lastTransitionTime` moves
only when its status changes; its reason and message are always the
latest. `metric_status` builds the `currentMetrics` entry of a Resource or
ContainerResource metric, with the average value as a canonical quantity
(Kubernetes' `resource.NewMilliQuantity(..., DecimalSI)`).
"""

from __future__ import annotations

import datetime as dt

from minik.api.meta import format_time, transition_time
from minik.api.models.quantity import format_nanos
from minik.api.objects import Condition, ConditionStatus, JsonObject

ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"

def milli_quantity(milli: int) -> str:
    """A milli-unit amount as Kubernetes writes a DecimalSI quantity: "250m", "2", "64M"."""
    return format_nanos(milli * 1_000_000)


def set_condition(hpa: JsonObject, type_: str, status: bool, reason: str, message: str,
                  now: dt.datetime) -> None:
    conditions: list[Condition] = hpa.setdefault("status", {}).setdefault("conditions", [])
    text: ConditionStatus = "True" if status else "False"
    current = next((c for c in conditions if c.get("type") == type_), None)
    updated: Condition = {"type": type_, "status": text, "reason": reason, "message": message,
                          "lastTransitionTime": transition_time(current, text, format_time(now))}
    if current is None:
        conditions.append(updated)
    else:
        conditions[conditions.index(current)] = updated


def condition_of(hpa: JsonObject, type_: str) -> JsonObject | None:
    conditions = (hpa.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def metric_status(spec: JsonObject, average: int, utilization: int | None) -> JsonObject:
    """The `currentMetrics` entry for a Resource or ContainerResource metric `spec`."""
    key = "resource" if spec.get("type") == "Resource" else "containerResource"
    source = spec.get(key) or {}
    current: JsonObject = {"averageValue": milli_quantity(average)}
    if utilization is not None:
        current["averageUtilization"] = utilization
    entry: JsonObject = {"name": source.get("name")}
    if key == "containerResource":
        entry["container"] = source.get("container")
    entry["current"] = current
    return {"type": spec.get("type"), key: entry}


def set_status(hpa: JsonObject, *, current: int, desired: int,
               metrics: list[JsonObject] | None, rescaled: bool, now: dt.datetime) -> None:
    """currentReplicas, desiredReplicas, currentMetrics, observedGeneration, lastScaleTime."""
    status = hpa.setdefault("status", {})
    status["observedGeneration"] = (hpa.get("metadata") or {}).get("generation")
    status["currentReplicas"] = current
    status["desiredReplicas"] = desired
    if metrics is None:
        status.pop("currentMetrics", None)
    else:
        status["currentMetrics"] = metrics
    if rescaled:
        status["lastScaleTime"] = format_time(now)
