"""What one node needs of a DaemonSet's pods: `podsShouldBeOnNode`, as a pure function.

A node that should run the pod and has none, not even one being deleted,
gets one (with `maxSurge`, one being deleted does not count). A node whose
pods may go on running keeps them, but its succeeded pods are deleted and
its failed ones too (their
replacement comes on a later sync, once the deletion is seen, and the
controller backs off per node so that a pod the node keeps failing is not
recreated in a hot loop) and of several running pods only the oldest stays;
with `maxSurge`, the oldest pod of the update revision and the oldest older
one stay, and the old one goes too when it is not ready, or when the new
one is available. A node that may not keep its pods loses them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from minik.api.meta import is_being_deleted, is_pod_ready
from minik.api.objects import Pod
from minik.controllers.daemonset.nodes import Placement
from minik.controllers.history import revision_of
from minik.controllers.podcontrol import is_pod_available


@dataclass
class NodeNeeds:
    create: bool = False
    delete: list[Pod] = field(default_factory=list)
    failed: list[Pod] = field(default_factory=list)
    """Failed pods to delete, subject to the controller's per-node back-off."""


def _surge_excess(running: list[Pod], hash_value: str, min_ready: int,
                  now: dt.datetime) -> list[Pod]:
    oldest_new: Pod | None = None
    oldest_old: Pod | None = None
    excess: list[Pod] = []
    for pod in running:
        if revision_of(pod) == hash_value and oldest_new is None:
            oldest_new = pod
        elif revision_of(pod) != hash_value and oldest_old is None:
            oldest_old = pod
        else:
            excess.append(pod)
    if oldest_new is not None and oldest_old is not None and (
            not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now)):
        excess.append(oldest_old)
    return excess


def node_needs(where: Placement, pods: list[Pod], hash_value: str, *, surge: bool,
               min_ready: int, now: dt.datetime) -> NodeNeeds:
    """The node's pods (in `by_creation_and_phase` order, those being deleted included)
    against where the set runs."""
    if where.should_run and not pods:
        return NodeNeeds(create=True)
    live = [p for p in pods if not is_being_deleted(p)]
    if not where.should_continue_running:
        return NodeNeeds(delete=live)
    failed = [p for p in live if _phase(p) == "Failed"]
    succeeded = [p for p in live if _phase(p) == "Succeeded"]
    running = [p for p in live if _phase(p) not in ("Failed", "Succeeded")]
    if not surge:
        return NodeNeeds(delete=succeeded + running[1:], failed=failed)
    if len(running) <= 1:
        return NodeNeeds(create=not running and where.should_run, delete=succeeded,
                         failed=failed)
    return NodeNeeds(delete=succeeded + _surge_excess(running, hash_value, min_ready, now),
                     failed=failed)


def _phase(pod: Pod) -> str:
    return str((pod.get("status") or {}).get("phase") or "")
