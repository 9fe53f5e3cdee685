"""kube-state-metrics' core series, rendered at each scrape from cached objects.

`KubeStateMetrics` is a Prometheus collector over an `ObjectSource`: in the
server, the process's shared informers (the caches the controllers already
keep, so a scrape reads memory and never the store); in tests, plain lists.
Each scrape walks every cached object once per kind and renders the text
exposition format with kube-state-metrics' names, help texts, types and
labels (`kube_state_pods`, `kube_state_workloads`, `kube_state_cluster`).
A series for an object that is gone is simply not rendered again, as with
kube-state-metrics itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from minik.api.objects import ObjectT
from minik.api.resources import (
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICASETS,
    SERVICES,
    STATEFULSETS,
    ResourceType,
)
from minik.monitoring.families import Family
from minik.monitoring.kube_state_cluster import (
    claim_families,
    namespace_families,
    node_families,
    service_families,
)
from minik.monitoring.kube_state_pods import pod_families
from minik.monitoring.kube_state_workloads import (
    cronjob_families,
    daemonset_families,
    deployment_families,
    job_families,
    replicaset_families,
    statefulset_families,
)

RESOURCES: tuple[ResourceType, ...] = (
    PODS, NODES, NAMESPACES, SERVICES, PERSISTENTVOLUMECLAIMS, DEPLOYMENTS, REPLICASETS,
    STATEFULSETS, DAEMONSETS, JOBS, CRONJOBS,
)
"""The kinds whose series are served: the caches a scrape reads."""


class ObjectSource(Protocol):
    """The cached objects of one kind (informer caches in the server)."""

    def objects(self, rt: ResourceType[ObjectT]) -> Sequence[ObjectT]: ...


class Snapshot:
    """The objects of each kind as they were when it was taken (a thread may render it)."""

    def __init__(self, by_type: Mapping[ResourceType, Sequence[Any]]) -> None:
        self.by_type = by_type

    def objects(self, rt: ResourceType[ObjectT]) -> Sequence[ObjectT]:
        found: Sequence[ObjectT] = self.by_type.get(rt, ())
        return found


class KubeStateMetrics(Collector):
    """A collector rendering kube-state-metrics' series from an `ObjectSource`."""

    def __init__(self, source: ObjectSource) -> None:
        self.source = source
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Family]:
        objects = self.source.objects
        yield from pod_families(objects(PODS))
        yield from node_families(objects(NODES))
        yield from namespace_families(objects(NAMESPACES))
        yield from service_families(objects(SERVICES))
        yield from claim_families(objects(PERSISTENTVOLUMECLAIMS))
        yield from deployment_families(objects(DEPLOYMENTS))
        yield from replicaset_families(objects(REPLICASETS))
        yield from statefulset_families(objects(STATEFULSETS))
        yield from daemonset_families(objects(DAEMONSETS))
        yield from job_families(objects(JOBS))
        yield from cronjob_families(objects(CRONJOBS))

    def render(self) -> bytes:
        """The text exposition format (0.0.4) of every series, as of now."""
        return generate_latest(self.registry)
