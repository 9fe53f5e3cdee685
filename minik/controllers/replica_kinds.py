"""The kinds a replica controller runs, ReplicaSet and ReplicationController, and how they differ.

Kubernetes' ReplicationManager is its ReplicaSetController behind an
adapter that converts ReplicationControllers to ReplicaSets and back. minik
needs less: the two kinds have the same spec and status fields, and differ
only in their resource (so in the owner references of their pods) and in
their selector, which for a ReplicationController is a plain label map.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from minik.api.errors import ApiError
from minik.api.objects import ReplicaSet, ReplicationController
from minik.api.resources import REPLICASETS, REPLICATIONCONTROLLERS, ResourceType
from minik.api.selectors.labels import LabelSelector, workload_selector
from minik.machinery.informer import key_of

log = logging.getLogger(__name__)

Replicated = ReplicaSet | ReplicationController
"""An object of either kind; their spec and status fields are the same but for the selector."""


@dataclass(frozen=True, slots=True)
class ReplicatedKind:
    """The kind a replica controller manages, and the name the controller runs under."""

    controller_name: str
    rt: ResourceType[Replicated]

    @property
    def kind(self) -> str:
        return self.rt.kind

    @property
    def resource(self) -> str:
        return self.rt.qualified_name


REPLICA_SET = ReplicatedKind("replicaset", REPLICASETS)
REPLICATION_CONTROLLER = ReplicatedKind("replicationcontroller", REPLICATIONCONTROLLERS)


def selector_of(obj: Replicated, kind: ReplicatedKind) -> LabelSelector | None:
    """The object's selector, read as its kind writes it; None (and a log line) when it does
    not parse."""
    try:
        return workload_selector(kind.kind, obj)
    except (ApiError, ValueError) as e:
        log.warning("%s %s has an invalid selector: %s", kind.kind, key_of(obj), e)
        return None
