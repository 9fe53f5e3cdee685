"""A DaemonSet's status, counted as Kubernetes' `updateDaemonSetStatus` counts it: a pure function.

Over the nodes: one that should run the pod is desired, and scheduled when
it has a pod (one being deleted or finished counts too); its first pod in
`by_creation_and_phase` order decides whether the node counts as ready,
available (ready for `minReadySeconds`) and up to date (made from the
update revision). A node that should not run the pod but has one is
misscheduled. Unavailable is desired less available.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from minik.api.meta import is_pod_ready, meta_of, name_of
from minik.api.objects import DaemonSet, DaemonSetStatus, Node, Pod
from minik.controllers.daemonset.nodes import placement
from minik.controllers.history import revision_of
from minik.controllers.podcontrol import is_pod_available


def daemon_set_status(ds: DaemonSet, nodes: Iterable[Node], node_pods: Mapping[str, list[Pod]],
                      hash_value: str, collisions: int | None,
                      now: dt.datetime) -> DaemonSetStatus:
    spec = ds.get("spec") or {}
    template, min_ready = spec.get("template") or {}, int(spec.get("minReadySeconds") or 0)
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        pods = node_pods.get(name_of(node), [])
        if not placement(template, node).should_run:
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        ready += is_pod_ready(pods[0])
        available += is_pod_available(pods[0], min_ready, now)
        updated += revision_of(pods[0]) == hash_value
    status: DaemonSetStatus = {
        "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired, "numberReady": ready,
        "observedGeneration": int(meta_of(ds).get("generation") or 0),
        "updatedNumberScheduled": updated, "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    if collisions is not None:
        status["collisionCount"] = collisions
    return status
