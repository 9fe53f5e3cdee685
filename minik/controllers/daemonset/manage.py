"""What one node needs of a DaemonSet's pods: `podsShouldBeOnNode`, as a pure function.

A node that should run the pod and has none gets one. A node whose pods
may go on running keeps them, but its failed pods are deleted (their
replacement comes on a later sync, once the deletion is seen, and the
controller backs off per node so that a pod the node keeps failing is not
recreated in a hot loop) and of several running pods only the oldest stays;
with `maxSurge`, the oldest pod of the update revision and the oldest older
one stay, and the old one goes too when it is not ready, or when the new
one is ready and `minReadySeconds` is 0. A node that may not keep its pods
loses them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minik.api.meta import is_pod_ready, labels_of
from minik.api.objects import Pod
from minik.controllers.daemonset.nodes import Placement
from minik.controllers.statefulset.identity import REVISION_LABEL


@dataclass
class NodeNeeds:
    create: bool = False
    delete: list[Pod] = field(default_factory=list)
    failed: list[Pod] = field(default_factory=list)
    """Failed pods to delete, subject to the controller's per-node back-off."""


def _surge_excess(running: list[Pod], hash_value: str, min_ready: int) -> list[Pod]:
    oldest_new: Pod | None = None
    oldest_old: Pod | None = None
    excess: list[Pod] = []
    for pod in running:
        if labels_of(pod).get(REVISION_LABEL) == hash_value and oldest_new is None:
            oldest_new = pod
        elif labels_of(pod).get(REVISION_LABEL) != hash_value and oldest_old is None:
            oldest_old = pod
        else:
            excess.append(pod)
    if oldest_new is not None and oldest_old is not None and (
            not is_pod_ready(oldest_old) or (is_pod_ready(oldest_new) and min_ready == 0)):
        excess.append(oldest_old)
    return excess


def node_needs(where: Placement, pods: list[Pod], hash_value: str, *, surge: bool,
               min_ready: int) -> NodeNeeds:
    """The node's pods (oldest first, none being deleted) against where the set runs."""
    if where.should_run and not pods:
        return NodeNeeds(create=True)
    if not where.should_continue_running:
        return NodeNeeds(delete=list(pods))
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    running = [p for p in pods if (p.get("status") or {}).get("phase") != "Failed"]
    if len(running) <= 1:
        return NodeNeeds(failed=failed)
    if not surge:
        return NodeNeeds(delete=running[1:], failed=failed)
    return NodeNeeds(delete=_surge_excess(running, hash_value, min_ready), failed=failed)
