"""The RollingUpdate strategy of a DaemonSet: which old pods go and which nodes surge.

After Kubernetes' `daemon/update.go` (`rollingUpdate`). Per node the pods
not being deleted are split into the newest-hash pod and the old one (a
node with more than one of either is left to the manage loop and counts as
unavailable, or as surging). Every node that should run the pod counts,
also one with no pod yet (it is unavailable). With `maxSurge` 0, old pods
are deleted, an unavailable one always and available ones while fewer than
`maxUnavailable` nodes are unavailable; the manage loop then creates the
new pod. With `maxSurge`, a new pod is first created beside the old one
(always when the old one is unavailable, otherwise while fewer than
`maxSurge` nodes are surging), and the old pod is deleted once the new one
is available; an old pod on a node that should no longer run it goes at
once when unavailable, else only while more pods are available than nodes
want one, so that moving the set between nodes never leaves it short.
Both amounts scale against the desired number of nodes, rounding up; when
both are 0, `maxUnavailable` is 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Mapping
from dataclasses import dataclass, field

from minik.api.meta import created_at, is_being_deleted, name_of
from minik.api.objects import DaemonSet, Pod, RollingUpdateDeployment
from minik.controllers.deployment.sizes import int_or_percent
from minik.controllers.history import revision_of
from minik.controllers.podcontrol import is_pod_available


@dataclass(frozen=True, slots=True)
class Limits:
    max_surge: int
    max_unavailable: int


def _rolling(ds: DaemonSet) -> RollingUpdateDeployment | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {}


def limits(ds: DaemonSet, desired: int) -> Limits:
    """`updatedDesiredNodeCounts`' scaled `maxSurge` and `maxUnavailable` (`SurgeCount`,
    `UnavailableCount`: 0 for OnDelete)."""
    rolling = _rolling(ds)
    if rolling is None:
        return Limits(0, 0)
    surge = int_or_percent(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return Limits(surge, unavailable)


def allows_surge(ds: DaemonSet) -> bool:
    """`AllowsSurge`: a RollingUpdate whose `maxSurge` is not 0 (as a number or percent)."""
    return limits(ds, 1).max_surge != 0


def by_creation_and_phase(pods: list[Pod]) -> list[Pod]:
    """`podByCreationTimestampAndPhase`: scheduled pods first, then oldest, then by name."""
    def key(pod: Pod) -> tuple[bool, float, str]:
        moment = created_at(pod)
        return (not (pod.get("spec") or {}).get("nodeName"),
                moment.timestamp() if moment else 0.0, name_of(pod))
    return sorted(pods, key=key)


def split_pods(pods: list[Pod], hash_value: str) -> tuple[Pod | None, Pod | None, bool]:
    """`findUpdatedPodsOnNode`: (new pod, old pod, whether there is at most one of each),
    pods being deleted ignored."""
    live = [p for p in pods if not is_being_deleted(p)]
    new = [p for p in live if revision_of(p) == hash_value]
    old = [p for p in live if revision_of(p) != hash_value]
    if len(new) > 1 or len(old) > 1:
        return None, None, False
    return (new[0] if new else None), (old[0] if old else None), True


@dataclass
class UpdateStep:
    """What one rolling-update pass asks for."""

    delete: list[Pod] = field(default_factory=list)
    surge_nodes: list[str] = field(default_factory=list)


def rolling_update(node_pods: Mapping[str, list[Pod]], hash_value: str, lim: Limits,
                   min_ready: int, now: dt.datetime) -> UpdateStep:
    """With `maxSurge` 0: the old pods to delete. `node_pods` has every node that has
    pods or should run one."""
    unavailable, allowed, candidates = 0, [], []
    for node in sorted(node_pods):
        new, old, ok = split_pods(node_pods[node], hash_value)
        if not ok or (new is None) == (old is None):
            unavailable += 1
        elif new is not None:
            unavailable += not is_pod_available(new, min_ready, now)
        elif old is not None and not is_pod_available(old, min_ready, now):
            allowed.append(old)
            unavailable += 1
        elif old is not None and unavailable < lim.max_unavailable:
            candidates.append(old)
    room = max(0, min(lim.max_unavailable - unavailable, len(candidates)))
    return UpdateStep(delete=allowed + candidates[:room])


def surge_update(node_pods: Mapping[str, list[Pod]], hash_value: str, lim: Limits,
                 min_ready: int, now: dt.datetime, *, should_run: Container[str],
                 desired: int) -> UpdateStep:
    """With `maxSurge`: the nodes to start a new pod on and the old pods to delete."""
    step = UpdateStep()
    surging = available = 0
    allowed_nodes: list[str] = []
    candidate_nodes: list[str] = []
    leaving: list[Pod] = []
    for node in sorted(node_pods):
        new, old, ok = split_pods(node_pods[node], hash_value)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        available += counted is not None and is_pod_available(counted, min_ready, now)
        if old is None:
            continue
        if new is None:
            if not is_pod_available(old, min_ready, now):
                if node in should_run:
                    allowed_nodes.append(node)
                else:
                    step.delete.append(old)
            elif node not in should_run:
                leaving.append(old)
            elif surging < lim.max_surge:
                candidate_nodes.append(node)
        elif not is_pod_available(new, min_ready, now):
            surging += 1
        else:
            step.delete.append(old)
    step.delete += leaving[:max(0, available - desired)]
    room = max(0, min(lim.max_surge - surging, len(candidate_nodes)))
    step.surge_nodes = allowed_nodes + candidate_nodes[:room]
    return step
