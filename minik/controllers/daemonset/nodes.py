"""Which nodes run a DaemonSet's pod, and the pod made for one node.

After Kubernetes' `daemon/util` and `NodeShouldRunDaemonPod`: a daemon pod
is the template with the DaemonSet tolerations added (`not-ready` and
`unreachable` NoExecute, the pressure and `unschedulable` NoSchedule ones,
`network-unavailable` for host-network pods) and a required node affinity
whose every term's `matchFields` is `metadata.name In [node]` (the
scheduler binds it there). A node should run the pod when the template's
`nodeName` (if any), `nodeSelector` and required node affinity match it and
the pod tolerates its NoSchedule and NoExecute taints; a pod already there
may go on running when only a NoSchedule taint is untolerated.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from minik.api.meta import name_of
from minik.api.nodeaffinity import required_affinity_matches, tolerated
from minik.api.objects import (
    Node,
    NodeSelectorRequirement,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Toleration,
)

NODE_NAME_FIELD = "metadata.name"

_NO_EXECUTE = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NO_SCHEDULE = ("node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable")
_HOST_NETWORK = ("node.kubernetes.io/network-unavailable",)


def default_tolerations(spec: PodSpec) -> list[Toleration]:
    """The tolerations Kubernetes adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`)."""
    wanted: list[Toleration] = [
        {"key": k, "operator": "Exists", "effect": "NoExecute"} for k in _NO_EXECUTE]
    keys = _NO_SCHEDULE + (_HOST_NETWORK if spec.get("hostNetwork") else ())
    wanted += [{"key": k, "operator": "Exists", "effect": "NoSchedule"} for k in keys]
    return wanted


def _with_tolerations(spec: PodSpec) -> None:
    existing = list(spec.get("tolerations") or [])
    for toleration in default_tolerations(spec):
        existing = [t for t in existing if (t.get("key"), t.get("effect"))
                    != (toleration["key"], toleration["effect"])]
        existing.append(toleration)
    spec["tolerations"] = existing


def _with_node_affinity(spec: PodSpec, node_name: str) -> None:
    """`ReplaceDaemonSetPodNodeNameNodeAffinity`: each term's matchFields name the node."""
    field: NodeSelectorRequirement = {"key": NODE_NAME_FIELD, "operator": "In",
                                      "values": [node_name]}
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = [t for t in (required["nodeSelectorTerms"] if required else [])
             if t.get("matchExpressions")] or [{}]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{**t, "matchFields": [copy.copy(field)]} for t in terms]}


def template_for_node(template: PodTemplateSpec, node_name: str) -> PodTemplateSpec:
    """The DaemonSet's template as the pod for `node_name` is made from it."""
    result = copy.deepcopy(template)
    spec: PodSpec = result.setdefault("spec", {})
    _with_tolerations(spec)
    _with_node_affinity(spec, node_name)
    return result


def target_node(pod: Pod) -> str | None:
    """The node a daemon pod is for: its nodeName, or its affinity's `metadata.name`."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    for term in required["nodeSelectorTerms"] if required else []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == NODE_NAME_FIELD and field.get("operator") == "In" \
                    and len(values) == 1:
                return str(values[0])
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    should_run: bool
    should_continue_running: bool


def placement(template: PodTemplateSpec, node: Node) -> Placement:
    """`NodeShouldRunDaemonPod`."""
    spec = template_for_node(template, name_of(node)).get("spec") or {}
    if (spec.get("nodeName") or name_of(node)) != name_of(node):
        return Placement(False, False)
    if not required_affinity_matches(spec, node):
        return Placement(False, False)
    tolerations = spec.get("tolerations") or []
    untolerated = [t for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute")
                   and not tolerated(tolerations, t)]
    if untolerated:
        keeps = all(t.get("effect") != "NoExecute" for t in untolerated)
        return Placement(False, keeps)
    return Placement(True, True)
