"""The scale of the controllers that own a budget's pods (Kubernetes' disruption "finders").

Each pod's controller ownerReference is followed to an object whose uid
matches it, in Kubernetes' order: a ReplicationController; a ReplicaSet
owned by a Deployment (the Deployment's replicas); a ReplicaSet of its own;
a StatefulSet; any other kind through its `scale` subresource. Each
controller counts once, however many of the pods it owns. A pod without a
controller is unmanaged: the controller warns about it and the budget's
percentage ignores it. A controller that is of a kind with no `scale`
subresource (a Job, a DaemonSet) or that no finder knows fails the sync,
as in Kubernetes, and the budget is written `SyncFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from minik.api.errors import ApiError
from minik.api.meta import controller_of, meta_of, name_of, uid_of
from minik.api.objects import (
    Deployment,
    OwnerReference,
    Pod,
    ReplicaSet,
    ReplicationController,
    StatefulSet,
)
from minik.api.resources import (
    DEPLOYMENTS,
    REGISTRY,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from minik.client.aio import AsyncClient
from minik.machinery.informer import Informer
from minik.machinery.shared_informers import SharedInformers

APPS_GROUPS = ("apps", "extensions")


class ScaleNotFound(Exception):
    """A pod's controller whose scale cannot be found: the budget's status is `SyncFailed`."""


@dataclass(slots=True)
class ExpectedScale:
    """The summed scale of the pods' controllers and the pods no controller owns."""

    expected: int = 0
    unmanaged: list[str] = field(default_factory=list)


def _group_of(ref: OwnerReference) -> str:
    return ref["apiVersion"].rpartition("/")[0]


Scalable = Deployment | ReplicaSet | StatefulSet | ReplicationController
W = TypeVar("W", Deployment, ReplicaSet, StatefulSet, ReplicationController)


def _replicas(obj: Scalable) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


class ControllerFinders:
    """Looks controllers up in the shared informers, and other kinds' Scale through the API."""

    def __init__(self, client: AsyncClient, informers: SharedInformers) -> None:
        self.client = client
        self.replica_sets = informers.get(REPLICASETS)
        self.deployments = informers.get(DEPLOYMENTS)
        self.stateful_sets = informers.get(STATEFULSETS)
        self.controllers = informers.get(REPLICATIONCONTROLLERS)

    async def wait_synced(self) -> None:
        await self.replica_sets.wait_synced()
        await self.deployments.wait_synced()
        await self.stateful_sets.wait_synced()
        await self.controllers.wait_synced()

    async def expected_scale(self, pods: list[Pod]) -> ExpectedScale:
        """`getExpectedScale`; raises ScaleNotFound for a controller no finder knows."""
        found = ExpectedScale()
        scales: dict[str, int] = {}
        for pod in pods:
            ref = controller_of(pod)
            if ref is None:
                found.unmanaged.append(name_of(pod))
                continue
            if ref["uid"] in scales:
                continue
            namespace = meta_of(pod).get("namespace")
            located = self._cached(ref, namespace) or await self._scale(ref, namespace)
            if located is None:
                raise ScaleNotFound(f'found no controllers for pod "{name_of(pod)}"')
            uid, replicas = located
            scales[uid] = replicas
        found.expected = sum(scales.values())
        return found

    def _cached(self, ref: OwnerReference, namespace: str | None) -> tuple[str, int] | None:
        """The controllers Kubernetes finds through listers."""
        group, kind = _group_of(ref), ref["kind"]
        if kind == "ReplicationController" and group == "":
            return self._matching(self.controllers, namespace, ref)
        if kind == "ReplicaSet" and group in APPS_GROUPS:
            rs = self._replica_set(ref, namespace)
            if rs is None:
                return None
            owner = controller_of(rs)
            if owner is not None and owner["kind"] == "Deployment" and (
                    _group_of(owner) in APPS_GROUPS):
                return self._matching(self.deployments, namespace, owner)
            return uid_of(rs), _replicas(rs)
        if kind == "StatefulSet" and group in APPS_GROUPS:
            return self._matching(self.stateful_sets, namespace, ref)
        return None

    def _replica_set(self, ref: OwnerReference, namespace: str | None) -> ReplicaSet | None:
        rs = self.replica_sets.indexer.get_by(namespace, ref["name"])
        return rs if rs is not None and uid_of(rs) == ref["uid"] else None

    @staticmethod
    def _matching(informer: Informer[W], namespace: str | None,
                  ref: OwnerReference) -> tuple[str, int] | None:
        obj = informer.indexer.get_by(namespace, ref["name"])
        if obj is None or uid_of(obj) != ref["uid"]:
            return None
        return uid_of(obj), _replicas(obj)

    async def _scale(self, ref: OwnerReference, namespace: str | None) -> tuple[str, int] | None:
        """`getScaleController`: any kind that serves `scale`."""
        rt = REGISTRY.by_kind(ref["apiVersion"], ref["kind"])
        if rt is None:
            raise ScaleNotFound(f'no matches for kind "{ref["kind"]}" in version '
                                f'"{ref["apiVersion"]}"')
        if rt.subresource("scale") is None:
            raise ScaleNotFound(f"{rt.qualified_name} does not implement the scale subresource")
        try:
            scale = await self.client.get(rt, namespace, ref["name"], subresource="scale")
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        if uid_of(scale) != ref["uid"]:
            return None
        return uid_of(scale), int((scale.get("spec") or {}).get("replicas") or 0)
