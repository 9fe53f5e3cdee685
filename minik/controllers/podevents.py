"""The informer handlers of a workload controller's pods, after Kubernetes' `replica_set.go`.

`addPod`, `updatePod` and `deletePod`, which the ReplicaSet, StatefulSet
and DaemonSet controllers share almost word for word: a pod maps to the
owner its controller reference names (cached, with the same uid), and
tells that owner's expectations of its creation or deletion; a pod that is
being deleted counts as deleted at once, so that its owner replaces it
without waiting for the kubelet; a change of controller reference syncs
the old owner too; and an orphan that appears, or whose labels or
controller reference changed, enqueues every owner of its namespace whose
selector matches it, so that one may adopt it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from minik.api.meta import (
    controller_of,
    is_being_deleted,
    labels_of,
    namespace_of,
    resource_version_of,
)
from minik.api.objects import AnyObject, ObjectT, Pod
from minik.api.selectors.labels import LabelSelector
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.podcontrol import owner_key
from minik.machinery.informer import Indexer, key_of
from minik.machinery.workqueue import WorkQueue


class PodEvents(Generic[ObjectT]):
    """Pod handlers that enqueue the keys of `kind` owners (`added`, `updated`, `deleted`)."""

    def __init__(self, kind: str, owners: Indexer[ObjectT], queue: WorkQueue,
                 expectations: ControllerExpectations, *,
                 selector: Callable[[ObjectT], LabelSelector | None]) -> None:
        self.kind = kind
        self.owners = owners
        self.queue = queue
        self.expectations = expectations
        self.selector = selector

    def owner_key(self, pod: Pod) -> str | None:
        return owner_key(pod, self.kind, self.owners)

    def enqueue_selecting(self, obj: AnyObject) -> None:
        """Every owner in the object's namespace whose selector matches its labels."""
        for owner in self.owners.list(namespace_of(obj) or ""):
            selector = self.selector(owner)
            if selector is not None and selector.matches(labels_of(obj)):
                self.queue.add(key_of(owner))

    def added(self, pod: Pod) -> None:
        if is_being_deleted(pod):
            self.deleted(pod)
        elif controller_of(pod) is None:
            self.enqueue_selecting(pod)
        elif (key := self.owner_key(pod)) is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def updated(self, old: Pod, new: Pod) -> None:
        if resource_version_of(old) == resource_version_of(new):
            return
        labels_changed = labels_of(old) != labels_of(new)
        if is_being_deleted(new):
            self.deleted(new)
            if labels_changed:
                self.deleted(old)
            return
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and (old_key := self.owner_key(old)) is not None:
            self.queue.add(old_key)
        if new_ref is not None:
            if (key := self.owner_key(new)) is not None:
                self.queue.add(key)
        elif labels_changed or old_ref is not None:
            self.enqueue_selecting(new)

    def deleted(self, pod: Pod) -> None:
        if (key := self.owner_key(pod)) is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)
