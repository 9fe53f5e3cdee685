"""Describing HorizontalPodAutoscalers, as kubectl's HorizontalPodAutoscalerDescriber (v2).

The reference, each metric's current value against its target (a
utilization as `87% (87m) / 50%`), the replica bounds, the behavior when
set, the target's current and desired pods, the conditions and events.
"""

from __future__ import annotations

from typing import Any

from minik.cli.describe import (
    Described,
    PrefixWriter,
    annotations_multiline,
    describe_events,
    labels_multiline,
    rfc1123z,
)


def _current(statuses: list[dict[str, Any]], index: int, key: str) -> dict[str, Any]:
    entry = statuses[index] if index < len(statuses) else {}
    return ((entry or {}).get(key) or {}).get("current") or {}


def _resource_metric(w: PrefixWriter, metric: dict[str, Any], current: dict[str, Any],
                     key: str) -> None:
    source = metric.get(key) or {}
    target = source.get("target") or {}
    if key == "resource":
        w.write(1, f"resource {source.get('name', '')} on pods")
    else:
        w.write(1, f"resource {source.get('name', '')} of container "
                   f"\"{source.get('container', '')}\" on pods")
    if target.get("averageValue") is not None:
        w.write(0, f":\t{current.get('averageValue', '<unknown>')} / {target['averageValue']}\n")
        return
    used = current.get("averageUtilization")
    shown = "<unknown>" if used is None else f"{used}% ({current.get('averageValue', '0')})"
    wanted = target.get("averageUtilization")
    w.write(1, f"(as a percentage of request):\t{shown} / "
               f"{'<auto>' if wanted is None else f'{wanted}%'}\n")


def _metrics(w: PrefixWriter, hpa: dict[str, Any]) -> None:
    statuses = (hpa.get("status") or {}).get("currentMetrics") or []
    w.write(0, "Metrics:\t( current / target )\n")
    for i, metric in enumerate((hpa.get("spec") or {}).get("metrics") or []):
        kind = metric.get("type")
        if kind in ("Resource", "ContainerResource"):
            key = "resource" if kind == "Resource" else "containerResource"
            _resource_metric(w, metric, _current(statuses, i, key), key)
        elif kind == "Pods":
            pods = metric.get("pods") or {}
            current = _current(statuses, i, "pods").get("averageValue", "<unknown>")
            w.write(1, f"\"{(pods.get('metric') or {}).get('name', '')}\" on pods:\t{current} / "
                       f"{(pods.get('target') or {}).get('averageValue', '')}\n")
        else:
            w.write(1, f"<unknown metric type \"{kind}\">\n")


def _direction(w: PrefixWriter, title: str, rules: dict[str, Any] | None) -> None:
    if rules is None:
        return
    w.write(1, f"{title}:\n")
    if rules.get("stabilizationWindowSeconds") is not None:
        w.write(2, f"Stabilization Window: {rules['stabilizationWindowSeconds']} seconds\n")
    policies = rules.get("policies") or []
    if policies:
        w.write(2, f"Select Policy: {rules.get('selectPolicy') or 'Max'}\n")
        w.write(2, "Policies:\n")
        for p in policies:
            w.write(3, f"- Type: {p.get('type', '')}\tValue: {p.get('value', 0)}\t"
                       f"Period: {p.get('periodSeconds', 0)} seconds\n")


def describe_horizontal_pod_autoscaler(d: Described, w: PrefixWriter) -> None:
    spec, status = d.get("spec", default={}), d.get("status", default={})
    ref = spec.get("scaleTargetRef") or {}
    w.write(0, f"Name:\t{d.meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{d.meta.get('namespace', '')}\n")
    labels_multiline(w, "Labels", d.meta.get("labels"))
    annotations_multiline(w, "Annotations", d.meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(d.meta.get('creationTimestamp'))}\n")
    w.write(0, f"Reference:\t{ref.get('kind', '')}/{ref.get('name', '')}\n")
    _metrics(w, d.obj)
    minimum = spec.get("minReplicas")
    w.write(0, f"Min replicas:\t{'<unset>' if minimum is None else minimum}\n")
    w.write(0, f"Max replicas:\t{spec.get('maxReplicas', 0)}\n")
    behavior = spec.get("behavior")
    if behavior is not None:
        w.write(0, "Behavior:\n")
        _direction(w, "Scale Up", behavior.get("scaleUp"))
        _direction(w, "Scale Down", behavior.get("scaleDown"))
    w.write(0, f"{ref.get('kind', '')} pods:\t{status.get('currentReplicas', 0)} current / "
               f"{status.get('desiredReplicas', 0)} desired\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tReason\tMessage\n")
        w.write(1, "----\t------\t------\t-------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')}\t{c.get('status', '')}\t{c.get('reason', '')}\t"
                       f"{c.get('message', '')}\n")
    describe_events(w, d.events or [], d.now)
