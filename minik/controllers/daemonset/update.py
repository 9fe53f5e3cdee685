"""The RollingUpdate strategy of a DaemonSet: which old pods go and which nodes surge.

After Kubernetes' `daemon/update.go` (`rollingUpdate`). Per node the pods
are split into the newest-hash pod and the old one (a node with more than
one of either is left to the manage loop and counts as unavailable). With
`maxSurge` 0, old pods are deleted, an unavailable one always and available
ones while fewer than `maxUnavailable` nodes are unavailable; the manage
loop then creates the new pod. With `maxSurge`, a new pod is first created
beside the old one (always when the old one is unavailable, otherwise while
fewer than `maxSurge` nodes are surging), and the old pod is deleted once the
new one is available. Both amounts scale against the desired number of
nodes, rounding up; when both are 0, `maxUnavailable` is 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from minik.api.meta import created_at, name_of
from minik.api.objects import JsonObject, Pod
from minik.controllers.deployment.sizes import int_or_percent
from minik.controllers.podcontrol import is_pod_available
from minik.controllers.statefulset.identity import revision_of


@dataclass(frozen=True, slots=True)
class Limits:
    max_surge: int
    max_unavailable: int


def limits(ds: JsonObject, desired: int) -> Limits:
    """`updatedDesiredNodeCounts`' scaled `maxSurge` and `maxUnavailable`."""
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Limits(surge, unavailable)


def _oldest_first(pod: Pod) -> tuple[float, str]:
    moment = created_at(pod)
    return (moment.timestamp() if moment else 0.0, name_of(pod))


def split_pods(pods: list[Pod], hash_value: str) -> tuple[Pod | None, Pod | None, bool]:
    """`findUpdatedPodsOnNode`: (new pod, old pod, whether there is at most one of each)."""
    new = [p for p in pods if revision_of(p) == hash_value]
    old = [p for p in pods if revision_of(p) != hash_value]
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
    """The old pods to delete and the nodes to create a surge pod on."""
    step = UpdateStep()
    if lim.max_surge == 0:
        unavailable, allowed, candidates = 0, [], []
        for node in sorted(node_pods):
            new, old, ok = split_pods(node_pods[node], hash_value)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                unavailable += not is_pod_available(new, min_ready, now)
            elif old is not None and not is_pod_available(old, min_ready, now):
                allowed.append(old)
            elif old is not None and unavailable < lim.max_unavailable:
                candidates.append(old)
        room = max(0, min(lim.max_unavailable - unavailable, len(candidates)))
        step.delete = allowed + candidates[:room]
        return step
    surging, allowed_nodes, candidate_nodes = 0, [], []
    for node in sorted(node_pods):
        new, old, ok = split_pods(node_pods[node], hash_value)
        if not ok:
            surging += 1
        elif old is None:
            continue
        elif new is None:
            if not is_pod_available(old, min_ready, now):
                allowed_nodes.append(node)
            elif surging < lim.max_surge:
                candidate_nodes.append(node)
        elif not is_pod_available(new, min_ready, now):
            surging += 1
        else:
            step.delete.append(old)
    room = max(0, min(lim.max_surge - surging, len(candidate_nodes)))
    step.surge_nodes = allowed_nodes + candidate_nodes[:room]
    return step


def oldest_first(pods: list[Pod]) -> list[Pod]:
    return sorted(pods, key=_oldest_first)
