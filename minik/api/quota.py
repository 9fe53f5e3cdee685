"""What an object costs against a ResourceQuota: Kubernetes' quota evaluators, as data.

One `usage` function per kind (`pkg/quota/v1/evaluator/core`): a pod uses
`pods` (unless terminal) and its compute requests and limits (`cpu` and
`memory` are the requests), counted as `podRequests` counts them (the
containers' sum, or a larger init container); a Service `services`,
`services.loadbalancers` and one `services.nodeports` per port of a
NodePort or LoadBalancer service; a claim `persistentvolumeclaims` and
`requests.storage`, also per storage class; ConfigMaps, Secrets,
ReplicationControllers and ResourceQuotas their plain count; and every kind
its object count `count/<resource>[.<group>]`, terminal pods included.

`covers` says which quota names a kind is charged under, `in_scope` whether
a quota's `scopes` (Terminating, NotTerminating, BestEffort,
NotBestEffort; a scoped quota tracks pods only) take an object in, and
`missing_requests` is the pod evaluator's `Constraints`: a quota on cpu or
memory makes every container state that request or limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from minik.api.defaults import qos_class
from minik.api.meta import is_pod_terminal
from minik.api.models.quantity import format_quantity, parse_quantity

JsonObject = dict[str, Any]
Usage = dict[str, Decimal]

PLAIN_COUNTS = {"ConfigMap": "configmaps", "Secret": "secrets",
                "ReplicationController": "replicationcontrollers",
                "ResourceQuota": "resourcequotas"}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
REQUIRED_FOR_CONTAINERS = frozenset({"cpu", "memory", "requests.cpu", "requests.memory",
                                     "limits.cpu", "limits.memory"})
CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
BINARY_HINTS = ("memory", "storage", "hugepages")


def count_name(plural: str, group: str) -> str:
    """`count/pods`, `count/deployments.apps`."""
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def _resource_totals(spec: JsonObject, key: str) -> Usage:
    totals: Usage = {}
    for container in spec.get("containers") or []:
        for name, value in _resources_of(container, key).items():
            totals[name] = totals.get(name, Decimal(0)) + parse_quantity(value)
    for init in spec.get("initContainers") or []:
        for name, value in _resources_of(init, key).items():
            totals[name] = max(totals.get(name, Decimal(0)), parse_quantity(value))
    return totals


def _resources_of(container: JsonObject, key: str) -> dict[str, Any]:
    """A container's requests (which default to its limits, as Kubernetes defaults them) or
    limits."""
    resources = container.get("resources") or {}
    limits = dict(resources.get("limits") or {})
    if key == "limits":
        return limits
    return {**limits, **(resources.get("requests") or {})}


def pod_usage(pod: JsonObject) -> Usage:
    usage: Usage = {count_name("pods", ""): Decimal(1)}
    if is_pod_terminal(pod):
        return usage
    usage["pods"] = Decimal(1)
    spec = pod.get("spec") or {}
    for name, value in _resource_totals(spec, "requests").items():
        usage[f"requests.{name}"] = value
        if name in COMPUTE:
            usage[name] = value
    for name, value in _resource_totals(spec, "limits").items():
        usage[f"limits.{name}"] = value
    return usage


def service_usage(service: JsonObject) -> Usage:
    spec = service.get("spec") or {}
    usage: Usage = {"services": Decimal(1), count_name("services", ""): Decimal(1)}
    kind = spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        usage["services.loadbalancers"] = Decimal(1)
    if kind == "NodePort" or (kind == "LoadBalancer"
                              and spec.get("allocateLoadBalancerNodePorts") is not False):
        usage["services.nodeports"] = Decimal(len(spec.get("ports") or []))
    return usage


def claim_usage(claim: JsonObject) -> Usage:
    spec = claim.get("spec") or {}
    usage: Usage = {"persistentvolumeclaims": Decimal(1),
                    count_name("persistentvolumeclaims", ""): Decimal(1)}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is not None:
        usage["requests.storage"] = parse_quantity(storage)
    storage_class = spec.get("storageClassName")
    if storage_class:
        usage[f"{storage_class}{CLASS_SUFFIX}persistentvolumeclaims"] = Decimal(1)
        if storage is not None:
            usage[f"{storage_class}{CLASS_SUFFIX}requests.storage"] = parse_quantity(storage)
    return usage


def usage(obj: JsonObject, kind: str, plural: str, group: str) -> Usage:
    """What one stored object of this resource (of `kind`) counts against a quota."""
    if kind == "Pod":
        return pod_usage(obj)
    if kind == "Service":
        return service_usage(obj)
    if kind == "PersistentVolumeClaim":
        return claim_usage(obj)
    counted = {count_name(plural, group): Decimal(1)}
    if kind in PLAIN_COUNTS and not group:
        counted[PLAIN_COUNTS[kind]] = Decimal(1)
    return counted


def covers(kind: str, plural: str, group: str, name: str) -> bool:
    """Whether a quota on `name` is charged by objects of this resource."""
    if name == count_name(plural, group):
        return True
    if kind == "Pod":
        return name in ("pods", *COMPUTE) or name.startswith(("requests.", "limits."))
    if kind == "Service":
        return name in ("services", "services.loadbalancers", "services.nodeports")
    if kind == "PersistentVolumeClaim":
        return name in ("persistentvolumeclaims", "requests.storage") or (
            CLASS_SUFFIX in name and name.endswith(("/persistentvolumeclaims",
                                                    "/requests.storage")))
    return not group and PLAIN_COUNTS.get(kind) == name


def _pod_in_scope(pod: JsonObject, scope: str) -> bool:
    spec = pod.get("spec") or {}
    terminating = spec.get("activeDeadlineSeconds") is not None
    best_effort = qos_class(spec) == "BestEffort"
    return {"Terminating": terminating, "NotTerminating": not terminating,
            "BestEffort": best_effort, "NotBestEffort": not best_effort}.get(scope, False)


def scopes_of(resource_quota: JsonObject) -> list[str]:
    """The quota's scopes, those of a `scopeSelector`'s `Exists` expressions included."""
    spec = resource_quota.get("spec") or {}
    scopes = list(spec.get("scopes") or [])
    for expression in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        if expression.get("operator") == "Exists":
            scopes.append(str(expression.get("scopeName")))
    return scopes


def in_scope(resource_quota: JsonObject, kind: str, obj: JsonObject) -> bool:
    """Whether the quota tracks this object: every object for an unscoped quota, else only
    pods in all of its scopes (a scope minik does not know, e.g. PriorityClass, matches
    nothing)."""
    scopes = scopes_of(resource_quota)
    if not scopes:
        return True
    return kind == "Pod" and all(_pod_in_scope(obj, scope) for scope in scopes)


def missing_requests(pod: JsonObject, hard: Iterable[str]) -> str | None:
    """`must specify limits.cpu for: c` when a quota on container compute is not stated by
    every container (`podEvaluator.Constraints`); None when all are."""
    required = REQUIRED_FOR_CONTAINERS.intersection(hard)
    if not required:
        return None
    spec = pod.get("spec") or {}
    missing: dict[str, set[str]] = {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        stated: set[str] = set()
        for name in _resources_of(container, "requests"):
            stated |= {f"requests.{name}", name}
        for name in _resources_of(container, "limits"):
            stated.add(f"limits.{name}")
        for name in required - stated:
            missing.setdefault(name, set()).add(str(container.get("name")))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{name} for: {','.join(sorted(missing[name]))}"
                                       for name in sorted(missing))


def add(total: Usage, more: Mapping[str, Decimal]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, Decimal(0)) + value


def render(name: str, value: Decimal) -> str:
    """A usage as a quantity string, binary for memory and storage when whole (`256Mi`)."""
    return format_quantity(value, binary=any(hint in name for hint in BINARY_HINTS)
                           and value % 1024 == 0)


def pretty(values: Mapping[str, Decimal]) -> str:
    """`pods=1,requests.cpu=500m`: sorted, as the quota admission's messages print them."""
    return ",".join(f"{name}={render(name, values[name])}" for name in sorted(values))
