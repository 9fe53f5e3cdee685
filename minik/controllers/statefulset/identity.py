"""A StatefulSet pod's identity: its ordinal, name, labels, claims, and the states that gate order.

Pure functions after Kubernetes' `stateful_set_utils.go`. A member of set
`web` is the pod `web-<ordinal>` (ordinals from `spec.ordinals.start`,
default 0, up to start + replicas - 1); its name comes back whenever the pod
does, with `hostname` = its name and `subdomain` = `spec.serviceName` (set
once, at creation: a pod's spec cannot change), the labels
`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
`controller-revision-hash` (the name of the ControllerRevision it was made
from), and for each `volumeClaimTemplates` entry `<template>` a
`persistentVolumeClaim` volume of claim `<template>-<set>-<ordinal>`, which
outlives the pod.

A pod the set should have but does not is stood for by the pod it would
create, which has no `status` (`is_created` is False), as Kubernetes'
`newVersionedStatefulSetPod` placeholders have no phase.
"""

from __future__ import annotations

import copy
import datetime as dt
import re

from minik.api.meta import (
    is_being_deleted,
    is_pod_ready,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    new_controller_ref,
)
from minik.api.objects import JsonObject, Pod, StatefulSet
from minik.controllers.history import POD_REVISION_LABEL
from minik.controllers.podcontrol import is_pod_available, pod_from_template

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = POD_REVISION_LABEL

_MEMBER_NAME = re.compile(r"(.*)-([0-9]+)$")
_MAX_ORDINAL = 2**31 - 1


# ------------------------------------------------------------------ the spec


def replicas_of(sts: StatefulSet) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def min_ready_seconds(sts: StatefulSet) -> int:
    return int((sts.get("spec") or {}).get("minReadySeconds") or 0)


def start_ordinal(sts: StatefulSet) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: StatefulSet) -> int:
    """The last ordinal the set should have (inclusive); start - 1 when it has none."""
    return start_ordinal(sts) + replicas_of(sts) - 1


def allows_burst(sts: StatefulSet) -> bool:
    """`podManagementPolicy: Parallel`: create and delete without waiting for order."""
    return (sts.get("spec") or {}).get("podManagementPolicy") == "Parallel"


def update_strategy_type(sts: StatefulSet) -> str:
    return ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"


# ------------------------------------------------------------------ names


def parent_and_ordinal(pod: Pod) -> tuple[str, int]:
    """The set a pod's name says it belongs to and its ordinal; ("", -1) when it says none."""
    match = _MEMBER_NAME.fullmatch(name_of(pod))
    if match is None or int(match.group(2)) > _MAX_ORDINAL:
        return "", -1
    return match.group(1), int(match.group(2))


def ordinal_of(pod: Pod) -> int:
    return parent_and_ordinal(pod)[1]


def in_ordinal_range(pod: Pod, sts: StatefulSet) -> bool:
    return start_ordinal(sts) <= ordinal_of(pod) <= end_ordinal(sts)


def pod_name(sts: StatefulSet, ordinal: int) -> str:
    return f"{name_of(sts)}-{ordinal}"


def claim_name(template_name: str, sts: StatefulSet, ordinal: int) -> str:
    return f"{template_name}-{name_of(sts)}-{ordinal}"


def is_member_of(sts: StatefulSet, pod: Pod) -> bool:
    return parent_and_ordinal(pod)[0] == name_of(sts)


def _claim_templates(sts: StatefulSet) -> list[JsonObject]:
    return list((sts.get("spec") or {}).get("volumeClaimTemplates") or [])


def _template_name(template: JsonObject) -> str:
    return str((template.get("metadata") or {}).get("name") or "")


# ------------------------------------------------------------- pod identity


def identity_matches(sts: StatefulSet, pod: Pod) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    return (ordinal >= 0 and parent == name_of(sts) and name_of(pod) == pod_name(sts, ordinal)
            and namespace_of(pod) == namespace_of(sts)
            and labels_of(pod).get(POD_NAME_LABEL) == name_of(pod))


def storage_matches(sts: StatefulSet, pod: Pod) -> bool:
    """Every claim template has its volume in the pod, naming this ordinal's claim."""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for template in _claim_templates(sts):
        source = (volumes.get(_template_name(template)) or {}).get("persistentVolumeClaim")
        if not source or source.get("claimName") != claim_name(_template_name(template), sts,
                                                               ordinal):
            return False
    return True


def identity_labels(sts: StatefulSet, ordinal: int) -> dict[str, str]:
    return {POD_NAME_LABEL: pod_name(sts, ordinal), POD_INDEX_LABEL: str(ordinal)}


def claims_for(sts: StatefulSet, ordinal: int) -> dict[str, JsonObject]:
    """Template name -> the claim this ordinal uses: the template, named and labelled.

    The claim carries the template's labels and the set's `matchLabels`, as
    `getPersistentVolumeClaims` gives it; its owner references are the
    retention policy's business (`retention`).
    """
    match_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    claims: dict[str, JsonObject] = {}
    for template in _claim_templates(sts):
        claim = copy.deepcopy(template)
        md = dict(claim.get("metadata") or {})
        md["name"] = claim_name(_template_name(template), sts, ordinal)
        md["namespace"] = namespace_of(sts)
        md["labels"] = {**(md.get("labels") or {}), **match_labels}
        claim["metadata"] = md
        claim.pop("status", None)
        claims[_template_name(template)] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                            **claim}
    return claims


def with_storage(sts: StatefulSet, pod: Pod, ordinal: int) -> None:
    """Give `pod` a claim volume per template, replacing template volumes of the same name."""
    spec = pod.setdefault("spec", {})
    claims = claims_for(sts, ordinal)
    volumes: list[JsonObject] = [
        {"name": name, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
        for name, claim in claims.items()]
    volumes += [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    spec["volumes"] = volumes


def new_pod(sts: StatefulSet, ordinal: int, revision: str) -> Pod:
    """The pod `sts` (as of `revision`, whose name is given) has at `ordinal`."""
    template = (sts.get("spec") or {}).get("template") or {}
    ref = new_controller_ref(sts, api_version="apps/v1", kind="StatefulSet")
    pod = pod_from_template(sts, template, ref)
    md = pod["metadata"]
    md.pop("generateName", None)
    md["name"] = pod_name(sts, ordinal)
    md["labels"] = {**md.get("labels", {}), **identity_labels(sts, ordinal),
                    REVISION_LABEL: revision}
    pod["spec"]["hostname"] = md["name"]
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    with_storage(sts, pod, ordinal)
    return pod


# -------------------------------------------------------------- pod states


def phase_of(pod: Pod) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Pod) -> bool:
    """The pod exists in the API (a placeholder for one to create has no status)."""
    return bool(meta_of(pod).get("uid")) or phase_of(pod) != ""


def is_terminating(pod: Pod) -> bool:
    return is_being_deleted(pod)


def is_running_and_ready(pod: Pod) -> bool:
    return phase_of(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Pod, min_ready: int, now: dt.datetime) -> bool:
    return is_running_and_ready(pod) and is_pod_available(pod, min_ready, now)


def is_healthy(pod: Pod) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_unavailable(pod: Pod, min_ready: int, now: dt.datetime) -> bool:
    return not is_healthy(pod) or not is_pod_available(pod, min_ready, now)
