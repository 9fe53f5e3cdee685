"""The resource types minik serves: names, groups, scopes, verbs, and their objects' shapes.

One `ResourceType` per Kubernetes resource, each a constant here (`PODS`,
`DEPLOYMENTS`, ...) that says the shape of its objects: `PODS` is a
`ResourceType[Pod]`, so what the async client answers for it and what an
informer of it holds are `Pod`s (`minik.api.objects`); a kind whose shape is
not declared there is a `ResourceType[JsonObject]`. Code that reads a kind's
fields names its constant.

Discovery, OpenAPI, routing, store keys, tables and the CLI's name
resolution read the `REGISTRY` of them all, so adding a resource is one
constant and one entry here. The registry answers names and paths, not
shapes: a type found there (by name, path or kind, or by iterating) is seen
with undeclared objects, as `ResourceType[JsonObject]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, cast

from minik.api.objects import (
    ControllerRevision,
    DaemonSet,
    Deployment,
    Endpoints,
    EndpointSlice,
    Event,
    JsonObject,
    Namespace,
    Node,
    ObjectT_co,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    ReplicaSet,
    ReplicationController,
    Service,
    StatefulSet,
    StorageClass,
)

ALL_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)


@dataclass(frozen=True, slots=True)
class Subresource:
    """A subresource such as `status`, `scale` or `log`."""

    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


STATUS = "status"
SCALE = Subresource("scale", "Scale", "autoscaling", "v1")
FINALIZE = Subresource("finalize", "Namespace", verbs=("update",))
"""A namespace's `finalize`: a PUT that may change its spec.finalizers (and not its status)."""


@dataclass(frozen=True, slots=True)
class ResourceType(Generic[ObjectT_co]):
    """A Kubernetes resource as discovery describes it, generic in its objects' shape."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = True
    returns_deleted_object: bool = False
    """A delete that removes the object answers with it, not a Status (Kubernetes'
    `ReturnDeletedObject`)."""
    stored_version: str | None = None
    """Served in this version, stored in that one: the API server converts what it
    reads and answers (`minik.api.conversion`)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def qualified_name(self) -> str:
        """`deployments.apps`: how messages and `kubectl get` name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`deployment.apps`: the prefix of `kubectl apply` output lines."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.all_subresources() if s.name == name), None)

    def all_subresources(self) -> Iterator[Subresource]:
        if self.has_status:
            yield Subresource(STATUS, self.kind, self.group, self.version)
        yield from self.subresources

    def key(self, namespace: str | None, name: str) -> str:
        """The store key: `/registry/{resource}/{namespace}/{name}`."""
        return f"{self.prefix(namespace)}{name}"

    def prefix(self, namespace: str | None) -> str:
        """Key prefix of a collection; all namespaces when `namespace` is None."""
        base = f"/registry/{self.group + '/' if self.group else ''}{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base


def _pod_subresources() -> tuple[Subresource, ...]:
    return (
        Subresource("log", "Pod", verbs=("get",)),
        Subresource("exec", "PodExecOptions", verbs=("create", "get")),
        Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
        Subresource("binding", "Binding", verbs=("create",)),
        Subresource("eviction", "Eviction", "policy", "v1", verbs=("create",)),
    )


CORE, APPS, BATCH = "", "apps", "batch"
WORKLOAD = ("all",)

NAMESPACES: ResourceType[Namespace] = ResourceType(
    CORE, "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
    subresources=(FINALIZE,), returns_deleted_object=True)
NODES: ResourceType[Node] = ResourceType(
    CORE, "v1", "Node", "nodes", namespaced=False, short_names=("no",),
    subresources=(Subresource("proxy", "NodeProxyOptions", verbs=("get",)),))
PODS: ResourceType[Pod] = ResourceType(
    CORE, "v1", "Pod", "pods", short_names=("po",), categories=WORKLOAD,
    subresources=_pod_subresources(), returns_deleted_object=True)
REPLICATIONCONTROLLERS: ResourceType[ReplicationController] = ResourceType(
    CORE, "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
    categories=WORKLOAD, subresources=(SCALE,))
CONFIGMAPS: ResourceType[JsonObject] = ResourceType(
    CORE, "v1", "ConfigMap", "configmaps", short_names=("cm",), has_status=False)
SECRETS: ResourceType[JsonObject] = ResourceType(
    CORE, "v1", "Secret", "secrets", has_status=False)
SERVICES: ResourceType[Service] = ResourceType(
    CORE, "v1", "Service", "services", short_names=("svc",), categories=WORKLOAD,
    returns_deleted_object=True)
ENDPOINTS: ResourceType[Endpoints] = ResourceType(
    CORE, "v1", "Endpoints", "endpoints", short_names=("ep",), has_status=False)
EVENTS: ResourceType[Event] = ResourceType(
    CORE, "v1", "Event", "events", short_names=("ev",), has_status=False)
SERVICEACCOUNTS: ResourceType[JsonObject] = ResourceType(
    CORE, "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",), has_status=False,
    returns_deleted_object=True)
PERSISTENTVOLUMES: ResourceType[PersistentVolume] = ResourceType(
    CORE, "v1", "PersistentVolume", "persistentvolumes", namespaced=False,
    short_names=("pv",), returns_deleted_object=True)
PERSISTENTVOLUMECLAIMS: ResourceType[PersistentVolumeClaim] = ResourceType(
    CORE, "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
    returns_deleted_object=True)
DEPLOYMENTS: ResourceType[Deployment] = ResourceType(
    APPS, "v1", "Deployment", "deployments", short_names=("deploy",), categories=WORKLOAD,
    subresources=(SCALE,))
REPLICASETS: ResourceType[ReplicaSet] = ResourceType(
    APPS, "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=WORKLOAD,
    subresources=(SCALE,))
STATEFULSETS: ResourceType[StatefulSet] = ResourceType(
    APPS, "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=WORKLOAD,
    subresources=(SCALE,))
DAEMONSETS: ResourceType[DaemonSet] = ResourceType(
    APPS, "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=WORKLOAD)
CONTROLLERREVISIONS: ResourceType[ControllerRevision] = ResourceType(
    APPS, "v1", "ControllerRevision", "controllerrevisions", has_status=False)
JOBS: ResourceType[JsonObject] = ResourceType(
    BATCH, "v1", "Job", "jobs", categories=WORKLOAD)
CRONJOBS: ResourceType[JsonObject] = ResourceType(
    BATCH, "v1", "CronJob", "cronjobs", short_names=("cj",), categories=WORKLOAD)
ENDPOINTSLICES: ResourceType[EndpointSlice] = ResourceType(
    "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", has_status=False)
STORAGECLASSES: ResourceType[StorageClass] = ResourceType(
    "storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False,
    short_names=("sc",), has_status=False, returns_deleted_object=True)
LEASES: ResourceType[JsonObject] = ResourceType(
    "coordination.k8s.io", "v1", "Lease", "leases", has_status=False)
HORIZONTALPODAUTOSCALERS: ResourceType[JsonObject] = ResourceType(
    "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
    short_names=("hpa",), categories=WORKLOAD)
HORIZONTALPODAUTOSCALERS_V1: ResourceType[JsonObject] = ResourceType(
    "autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
    short_names=("hpa",), categories=WORKLOAD, stored_version="v2")

NODEMETRICS: ResourceType[JsonObject] = ResourceType(
    "metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", namespaced=False,
    verbs=("get", "list"), has_status=False)
"""Computed, never stored: served by `minik.apiserver.resourcemetrics`, as metrics-server."""
PODMETRICS: ResourceType[JsonObject] = ResourceType(
    "metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list"), has_status=False)


def _registry() -> tuple[ResourceType[JsonObject], ...]:
    """Every served type, in discovery's order, seen without its shape (the module's
    docstring says why): the one place a typed constant is viewed as untyped."""
    return cast("tuple[ResourceType[JsonObject], ...]", (
        NAMESPACES, NODES, PODS, REPLICATIONCONTROLLERS, CONFIGMAPS, SECRETS, SERVICES,
        ENDPOINTS, EVENTS, SERVICEACCOUNTS, PERSISTENTVOLUMES, PERSISTENTVOLUMECLAIMS,
        DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS, CONTROLLERREVISIONS, JOBS,
        CRONJOBS, ENDPOINTSLICES, STORAGECLASSES, LEASES, HORIZONTALPODAUTOSCALERS,
        NODEMETRICS, PODMETRICS,
    ))


def _other_versions() -> tuple[ResourceType[JsonObject], ...]:
    """Types also served in a version other than the stored one (after it in discovery)."""
    return (HORIZONTALPODAUTOSCALERS_V1,)


@dataclass(frozen=True)
class Registry:
    """Lookups over the served resource types.

    Iterating, `resolve` and `get` see each resource once, in its stored
    version; paths, kinds and discovery also see the other versions served.
    """

    types: tuple[ResourceType[JsonObject], ...] = field(default_factory=_registry)
    other_versions: tuple[ResourceType[JsonObject], ...] = field(default_factory=_other_versions)

    def __iter__(self) -> Iterator[ResourceType[JsonObject]]:
        return iter(self.types)

    def _served(self) -> tuple[ResourceType[JsonObject], ...]:
        return self.types + self.other_versions

    def by_path(self, group: str, version: str, plural: str) -> ResourceType[JsonObject] | None:
        return next(
            (t for t in self._served()
             if t.group == group and t.version == version and t.plural == plural),
            None,
        )

    def by_kind(self, api_version: str, kind: str) -> ResourceType[JsonObject] | None:
        return next(
            (t for t in self._served() if t.api_version == api_version and t.kind == kind), None
        )

    def stored(self, rt: ResourceType[JsonObject]) -> ResourceType[JsonObject]:
        """The type `rt`'s objects are stored as (`rt` itself unless it is converted)."""
        if rt.stored_version is None:
            return rt
        found = self.by_path(rt.group, rt.stored_version, rt.plural)
        assert found is not None, f"{rt.qualified_name} stored in an unserved version"
        return found

    def resolve(self, name: str) -> ResourceType[JsonObject] | None:
        """Find a type as kubectl does: plural, singular, short name, kind, `plural.group`."""
        wanted = name.lower()
        for t in self.types:
            names = {t.plural, t.singular, t.kind.lower(), t.qualified_name, t.qualified_kind,
                     *t.short_names}
            if wanted in names:
                return t
        return None

    def get(self, name: str) -> ResourceType[JsonObject]:
        """Like `resolve`, for names that must exist; a typo is a LookupError."""
        rt = self.resolve(name)
        if rt is None:
            raise LookupError(f"no resource type {name!r}")
        return rt

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, [versions]) in a stable order, core group first."""
        seen: dict[str, list[str]] = {}
        for t in self._served():
            versions = seen.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return list(seen.items())

    def in_group_version(self, group: str, version: str) -> Iterable[ResourceType[JsonObject]]:
        return (t for t in self._served() if t.group == group and t.version == version)


REGISTRY = Registry()
