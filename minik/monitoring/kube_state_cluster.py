"""kube-state-metrics' series of Nodes, Namespaces, Services and PersistentVolumeClaims
(`internal/store/<kind>.go`), from cached objects.

A node's conditions are condition triples (`status` true/false/unknown);
its capacity and allocatable are reported per resource in
kube-state-metrics' units. Namespace and claim phases have one series per
phase, 1 for the object's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from minik.api.meta import name_of, namespace_of, uid_of
from minik.api.models.quantity import parse_quantity
from minik.api.objects import Namespace, Node, PersistentVolumeClaim, Service
from minik.monitoring.families import (
    Family,
    add_condition,
    created,
    flag,
    gauge,
    resource_series,
)

NAMESPACE_PHASES = ("Active", "Terminating")
CLAIM_PHASES = ("Lost", "Bound", "Pending")


def _internal_ip(node: Node) -> str:
    for address in node.get("status", {}).get("addresses", []):
        if address.get("type") == "InternalIP":
            return address.get("address", "")
    return ""


def node_families(nodes: Sequence[Node]) -> Iterator[Family]:
    info = gauge("kube_node_info", "Information about a cluster node.",
                 ["node", "kernel_version", "os_image", "container_runtime_version",
                  "kubelet_version", "kubeproxy_version", "provider_id", "pod_cidr",
                  "system_uuid", "internal_ip"])
    created_at = gauge("kube_node_created", "Unix creation timestamp", ["node"])
    unschedulable = gauge("kube_node_spec_unschedulable", "Whether a node can schedule new pods.",
                          ["node"])
    condition = gauge("kube_node_status_condition", "The condition of a cluster node.",
                      ["node", "condition", "status"])
    capacity = gauge("kube_node_status_capacity",
                     "The capacity for different resources of a node.",
                     ["node", "resource", "unit"])
    allocatable = gauge("kube_node_status_allocatable",
                        "The allocatable for different resources of a node that are available "
                        "for scheduling.", ["node", "resource", "unit"])
    for node in nodes:
        name = name_of(node)
        spec, status = node.get("spec", {}), node.get("status", {})
        ni = status.get("nodeInfo", {})
        info.add_metric([name, ni.get("kernelVersion", ""), ni.get("osImage", ""),
                         ni.get("containerRuntimeVersion", ""), ni.get("kubeletVersion", ""),
                         "deprecated", str(spec.get("providerID", "")),
                         spec.get("podCIDR", ""), ni.get("systemUUID", ""),
                         _internal_ip(node)], 1)
        if (value := created(node)) is not None:
            created_at.add_metric([name], value)
        unschedulable.add_metric([name], flag(bool(spec.get("unschedulable"))))
        for c in status.get("conditions", []):
            add_condition(condition, [name, c.get("type", "")], c.get("status"))
        for resource, unit, amount in resource_series(status.get("capacity")):
            capacity.add_metric([name, resource, unit], amount)
        for resource, unit, amount in resource_series(status.get("allocatable")):
            allocatable.add_metric([name, resource, unit], amount)
    yield from (info, created_at, unschedulable, condition, capacity, allocatable)


def namespace_families(namespaces: Sequence[Namespace]) -> Iterator[Family]:
    created_at = gauge("kube_namespace_created", "Unix creation timestamp", ["namespace"])
    phase = gauge("kube_namespace_status_phase", "kubernetes namespace status phase.",
                  ["namespace", "phase"])
    for namespace in namespaces:
        name = name_of(namespace)
        if (value := created(namespace)) is not None:
            created_at.add_metric([name], value)
        current = namespace.get("status", {}).get("phase")
        for each in NAMESPACE_PHASES:
            phase.add_metric([name, each], flag(current == each))
    yield from (created_at, phase)


def service_families(services: Sequence[Service]) -> Iterator[Family]:
    labels = ("namespace", "service", "uid")
    info = gauge("kube_service_info", "Information about service.",
                 [*labels, "cluster_ip", "external_name", "load_balancer_ip",
                  "external_traffic_policy"])
    created_at = gauge("kube_service_created", "Unix creation timestamp", labels)
    kind = gauge("kube_service_spec_type", "Type about service.", [*labels, "type"])
    for service in services:
        key = [namespace_of(service) or "", name_of(service), uid_of(service)]
        spec = service.get("spec", {})
        info.add_metric([*key, spec.get("clusterIP", ""), spec.get("externalName", ""),
                         str(spec.get("loadBalancerIP", "")),
                         spec.get("externalTrafficPolicy", "")], 1)
        if (value := created(service)) is not None:
            created_at.add_metric(key, value)
        kind.add_metric([*key, spec.get("type", "ClusterIP")], 1)
    yield from (info, created_at, kind)


def claim_families(claims: Sequence[PersistentVolumeClaim]) -> Iterator[Family]:
    labels = ("namespace", "persistentvolumeclaim")
    info = gauge("kube_persistentvolumeclaim_info",
                 "Information about persistent volume claim.",
                 [*labels, "storageclass", "volumename", "volumemode"])
    phase = gauge("kube_persistentvolumeclaim_status_phase",
                  "The phase the persistent volume claim is currently in.", [*labels, "phase"])
    requested = gauge("kube_persistentvolumeclaim_resource_requests_storage_bytes",
                      "The capacity of storage requested by the persistent volume claim.",
                      labels)
    for claim in claims:
        key = [namespace_of(claim) or "", name_of(claim)]
        spec = claim.get("spec", {})
        info.add_metric([*key, spec.get("storageClassName", ""), spec.get("volumeName", ""),
                         spec.get("volumeMode", "")], 1)
        current = claim.get("status", {}).get("phase")
        for each in CLAIM_PHASES:
            phase.add_metric([*key, each], flag(current == each))
        storage = spec.get("resources", {}).get("requests", {}).get("storage")
        if storage is not None:
            with contextlib.suppress(ValueError):
                requested.add_metric(key, float(parse_quantity(storage)))
    yield from (info, phase, requested)
