"""Conversion between the served versions of a kind stored in another: autoscaling/v1 HPAs.

A kind served in two versions is stored in one (its `ResourceType` without
`stored_version`); the other (`stored_version` set) is converted on the way
in and out, as Kubernetes' conversion functions do, so that clients of
either version see one object. autoscaling/v1's HorizontalPodAutoscaler, as
Kubernetes' `pkg/apis/autoscaling/v1/conversion.go`: its
`targetCPUUtilizationPercentage` is the v2 cpu `Resource` metric with a
`Utilization` target, `status.currentCPUUtilizationPercentage` that metric's
current utilization; the v2 fields v1 cannot hold (other metrics, behavior,
conditions, other current metrics) ride in `autoscaling.alpha.kubernetes.io/*`
annotations, and come back from them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minik.api.objects import JsonObject

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION,
                BEHAVIOR_ANNOTATION)


@dataclass(frozen=True, slots=True)
class Conversion:
    """How objects of one served version become the stored version's, and back."""

    to_stored: Callable[[JsonObject], JsonObject]
    to_served: Callable[[JsonObject], JsonObject]


def _is_cpu_utilization(metric: Any) -> bool:
    resource = (metric or {}).get("resource") or {}
    return ((metric or {}).get("type") == "Resource" and resource.get("name") == "cpu"
            and (resource.get("target") or {}).get("type") == "Utilization")


def _is_cpu_current(metric: Any) -> bool:
    resource = (metric or {}).get("resource") or {}
    return (metric or {}).get("type") == "Resource" and resource.get("name") == "cpu"


def _annotate(annotations: dict[str, str], key: str, value: Any) -> None:
    if value:
        annotations[key] = json.dumps(value, separators=(",", ":"))


def hpa_v2_to_v1(obj: JsonObject) -> JsonObject:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec, status = out.get("spec") or {}, out.get("status")
    metadata = out.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    metrics = spec.pop("metrics", None) or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get(
            "averageUtilization")
    _annotate(annotations, METRICS_ANNOTATION, [m for m in metrics if m is not cpu])
    _annotate(annotations, BEHAVIOR_ANNOTATION, spec.pop("behavior", None))
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        cpu_now = next((m for m in current if _is_cpu_current(m)), None)
        if cpu_now is not None:
            utilization = (cpu_now["resource"].get("current") or {}).get("averageUtilization")
            if utilization is not None:
                status["currentCPUUtilizationPercentage"] = utilization
        _annotate(annotations, CURRENT_METRICS_ANNOTATION,
                  [m for m in current if m is not cpu_now])
        _annotate(annotations, CONDITIONS_ANNOTATION, status.pop("conditions", None))
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    if annotations:
        metadata["annotations"] = annotations
    return out


def _from_annotation(annotations: dict[str, str], key: str) -> Any:
    text = annotations.pop(key, None)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def hpa_v1_to_v2(obj: JsonObject) -> JsonObject:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    metadata = out.get("metadata")
    annotations = dict((metadata or {}).get("annotations") or {})
    spec = out.get("spec")
    if isinstance(spec, dict):
        metrics: list[Any] = []
        target = spec.pop("targetCPUUtilizationPercentage", None)
        if target is not None:
            metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target}}})
        metrics.extend(_from_annotation(annotations, METRICS_ANNOTATION) or [])
        if metrics:
            spec["metrics"] = metrics
        behavior = _from_annotation(annotations, BEHAVIOR_ANNOTATION)
        if behavior:
            spec["behavior"] = behavior
    status = out.get("status")
    if isinstance(status, dict):
        current: list[Any] = []
        utilization = status.pop("currentCPUUtilizationPercentage", None)
        if utilization is not None:
            current.append({"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": utilization}}})
        current.extend(_from_annotation(annotations, CURRENT_METRICS_ANNOTATION) or [])
        if current:
            status["currentMetrics"] = current
        conditions = _from_annotation(annotations, CONDITIONS_ANNOTATION)
        if conditions:
            status["conditions"] = conditions
    for key in _ANNOTATIONS:
        annotations.pop(key, None)
    if isinstance(metadata, dict):
        if annotations:
            metadata["annotations"] = annotations
        else:
            metadata.pop("annotations", None)
    return out


CONVERSIONS: dict[tuple[str, str], Conversion] = {
    ("autoscaling/v1", "HorizontalPodAutoscaler"): Conversion(hpa_v1_to_v2, hpa_v2_to_v1),
}
"""(served apiVersion, kind) -> its conversion to and from the stored version."""
