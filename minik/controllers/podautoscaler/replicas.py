"""The replica calculation, as Kubernetes' `replica_calculator.go`: pure, over pods and metrics.

Pods are first grouped (`group_pods`): deleted and Failed pods are ignored;
Pending pods are unready; pods without a metric are missing; for cpu, a pod
is unready while its readiness is not known, or, within the cpu
initialization period (5 min) after it started, when it is not ready or
its sample was taken less than one window after its last readiness change,
or, later, when it is not ready and never has been since the readiness
delay (30 s) after its start. The usage ratio of the ready pods' samples
against the target decides: within the tolerance (10%) nothing changes;
with no unready or missing pods the proposal is `ceil(ratio * ready)`.
Otherwise the ratio is recomputed as if missing pods used 100% of the
target (on a scale down) or nothing (on a scale up) and, on a scale up,
unready pods nothing, and a proposal that would turn the direction around,
or fall within the tolerance, keeps the current count.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from minik.api.meta import is_being_deleted, meta_of, parse_time, pod_condition
from minik.api.objects import Pod
from minik.controllers.podautoscaler.metrics import PodMetric, PodMetrics, milli_value

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = dt.timedelta(minutes=5)
INITIAL_READINESS_DELAY = dt.timedelta(seconds=30)


class CalculationError(Exception):
    """The replica count cannot be computed (Kubernetes' message)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A replica count and what it was computed from."""

    replicas: int
    utilization: int | None
    """Average percentage of request (Utilization targets only)."""
    average: int
    """Average usage per pod, milli-units."""
    timestamp: dt.datetime | None = None


@dataclass(slots=True)
class PodGroups:
    ready: int = 0
    unready: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)


def group_pods(pods: Sequence[Pod], metrics: PodMetrics, resource: str,
               now: dt.datetime) -> PodGroups:
    groups = PodGroups()
    for pod in pods:
        name = meta_of(pod)["name"]
        status = pod.get("status") or {}
        if is_being_deleted(pod) or status.get("phase") == "Failed":
            groups.ignored.add(name)
        elif status.get("phase") == "Pending":
            groups.unready.add(name)
        elif name not in metrics:
            groups.missing.add(name)
        elif resource == "cpu" and _cpu_unready(pod, metrics[name], now):
            groups.unready.add(name)
        else:
            groups.ready += 1
    return groups


def _cpu_unready(pod: Pod, metric: PodMetric, now: dt.datetime) -> bool:
    ready = pod_condition(pod, "Ready")
    started = parse_time((pod.get("status") or {}).get("startTime"))
    changed = parse_time(ready.get("lastTransitionTime")) if ready is not None else None
    if ready is None or started is None or changed is None:
        return True
    if started + CPU_INITIALIZATION_PERIOD > now:
        return ready.get("status") == "False" or metric.timestamp < changed + metric.window
    return ready.get("status") == "False" and started + INITIAL_READINESS_DELAY > changed


def pod_requests(pods: Sequence[Pod], resource: str, container: str | None) -> dict[str, int]:
    """Each pod's request of `resource` in milli-units; a container without one is an error."""
    requests: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container is not None and c.get("name") != container:
                continue
            value = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if value is None:
                raise CalculationError(f"missing request for {resource} in container "
                                       f"{c.get('name')} of Pod {meta_of(pod)['name']}")
            total += milli_value(value)
        requests[meta_of(pod)["name"]] = total
    return requests


def utilization_ratio(metrics: PodMetrics, requests: dict[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, average usage) of the pods with both a sample and a request."""
    used = requested = count = 0
    for name, metric in metrics.items():
        if name in requests:
            used, requested, count = used + metric.value, requested + requests[name], count + 1
    if requested == 0:
        raise CalculationError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // count


def usage_ratio(metrics: PodMetrics, target: int) -> tuple[float, int]:
    """(usage ratio, average usage) against a target average value."""
    average = sum(m.value for m in metrics.values()) // len(metrics)
    return average / target, average


def _within(ratio: float, tolerance: float) -> bool:
    return abs(1.0 - ratio) <= tolerance


@dataclass(frozen=True, slots=True)
class Calculator:
    """Kubernetes' ReplicaCalculator with its defaults."""

    tolerance: float = TOLERANCE

    def _usable(self, pods: Sequence[Pod], metrics: PodMetrics, resource: str,
                now: dt.datetime) -> PodGroups:
        if not pods:
            raise CalculationError("no pods returned by selector while calculating replica count")
        groups = group_pods(pods, metrics, resource, now)
        for name in groups.ignored | groups.unready:
            metrics.pop(name, None)
        if not metrics:
            raise CalculationError(
                "did not receive metrics for targeted pods (pods might be unready)")
        return groups

    def utilization_replicas(
        self, current: int, target: int, resource: str, pods: Sequence[Pod],
        metrics: PodMetrics, now: dt.datetime, *, container: str | None = None,
    ) -> Proposal:
        """Replicas for an `averageUtilization` target (Kubernetes' GetResourceReplicas)."""
        metrics = dict(metrics)
        groups = self._usable(pods, metrics, resource, now)
        requests = pod_requests(pods, resource, container)
        ratio, utilization, average = utilization_ratio(metrics, requests, target)
        replicas = self._adjusted(current, ratio, groups, metrics,
                                  fallback=lambda name: requests[name] * max(100, target) // 100,
                                  recompute=lambda: utilization_ratio(metrics, requests,
                                                                      target)[0])
        return Proposal(replicas, utilization, average)

    def average_value_replicas(
        self, current: int, target: int, resource: str, pods: Sequence[Pod],
        metrics: PodMetrics, now: dt.datetime,
    ) -> Proposal:
        """Replicas for an `averageValue` target in milli-units (GetRawResourceReplicas)."""
        metrics = dict(metrics)
        groups = self._usable(pods, metrics, resource, now)
        ratio, average = usage_ratio(metrics, target)
        replicas = self._adjusted(current, ratio, groups, metrics,
                                  fallback=lambda _name: target,
                                  recompute=lambda: usage_ratio(metrics, target)[0])
        return Proposal(replicas, None, average)

    def _adjusted(self, current: int, ratio: float, groups: PodGroups, metrics: PodMetrics, *,
                  fallback: Callable[[str], int], recompute: Callable[[], float]) -> int:
        """The proposal once missing and unready pods are accounted for."""
        scale_up_with_unready = bool(groups.unready) and ratio > 1.0
        if not scale_up_with_unready and not groups.missing:
            if _within(ratio, self.tolerance):
                return current
            return math.ceil(ratio * groups.ready)
        zero = PodMetric(0, dt.datetime.fromtimestamp(0, dt.UTC), dt.timedelta())
        if groups.missing and ratio != 1.0:
            for name in groups.missing:
                metrics[name] = zero if ratio > 1.0 else PodMetric(
                    fallback(name), zero.timestamp, zero.window)
        if scale_up_with_unready:
            for name in groups.unready:
                metrics[name] = zero
        new_ratio = recompute()
        if _within(new_ratio, self.tolerance) or (ratio < 1.0 < new_ratio) or (
                new_ratio < 1.0 < ratio):
            return current
        replicas = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
            return current
        return replicas
