"""Whether a pod's volumes let it run on a node: kube-scheduler's volume plugins, pure.

Three of kube-scheduler's plugins, over what the scheduler's informers hold
(a `VolumeCache`), with their words:

- VolumeBinding's PreFilter (`pod_claims`): every claim the pod names
  (`persistentVolumeClaim.claimName`, and `<pod>-<volume>` for a generic
  ephemeral volume) must exist, not be being deleted, not be Lost, and an
  ephemeral claim must be owned by the pod; an unbound claim whose class
  binds `Immediate` (or that has no class) makes the pod wait for the PV
  controller (`pod has unbound immediate PersistentVolumeClaims`). These
  refusals hold for every node alike: the FailedScheduling message says
  them once (`0/1 nodes are available: persistentvolumeclaim "x" not
  found.`).
- VolumeBinding's Filter (`find_volumes`), per node: a bound claim's PV
  must exist and its `nodeAffinity` must match the node; an unbound
  `WaitForFirstConsumer` claim is matched to the smallest Available PV
  that fits it on the node (`minik.api.volumematching`, the rules the PV
  controller follows too: class, size, access modes, volume mode,
  selector, node affinity, or the PV pre-bound to it by `claimRef`) -
  a static binding the scheduler writes itself, as kube-scheduler does
  (the PV controller never binds a delayed claim to a PV it was not
  pre-bound to) - and otherwise must be provisionable there: its class
  names a provisioner other than `kubernetes.io/no-provisioner` and its
  `allowedTopologies` match the node. A claim whose provisioning started
  for another node (`volume.kubernetes.io/selected-node`) keeps the pod
  off this one.
- VolumeRestrictions (`read_write_once_pod_conflicts`): a
  `ReadWriteOncePod` claim already used by another scheduled,
  not-finished pod refuses every node.

A claim is bound when `spec.volumeName` is set and the binding is
complete: the PV controller's `pv.kubernetes.io/bind-completed`
annotation (what kube-scheduler reads) or the claim's phase `Bound`.
NodeVolumeLimits has nothing to count: Docker volumes have no per-node
attach limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from minik.api.ephemeral import volume_is_for_pod
from minik.api.meta import (
    annotations_of,
    is_being_deleted,
    labels_of,
    name_of,
    namespace_of,
    uid_of,
)
from minik.api.objects import (
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    StorageClass,
)
from minik.api.volumematching import find_matching_volume
from minik.api.volumes import (
    BIND_COMPLETED,
    NO_PROVISIONER,
    SELECTED_NODE,
    PodClaim,
    claim_class,
    claims_of,
    requested_storage,
    volume_class,
)
from minik.scheduler.fit import matches_node_selector_terms

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
READ_WRITE_ONCE_POD = "ReadWriteOncePod"

UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NODE_CONFLICT = "node(s) had volume node affinity conflict"
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
RWOP_CONFLICT = ("node has pod using PersistentVolumeClaim with the same name and "
                 "ReadWriteOncePod access mode")


class VolumeCache(Protocol):
    """The claims, volumes and classes the scheduler's informers hold."""

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None: ...

    def volume(self, name: str) -> PersistentVolume | None: ...

    def volumes(self) -> list[PersistentVolume]: ...

    def storage_class(self, name: str) -> StorageClass | None: ...


@dataclass(slots=True)
class PodClaims:
    """The pod's claims sorted as VolumeBinding's PreFilter sorts them, or why it must wait."""

    problem: str | None = None
    bound: list[PersistentVolumeClaim] = field(default_factory=list)
    delayed: list[PersistentVolumeClaim] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.bound or self.delayed)


@dataclass(slots=True)
class VolumePlan:
    """What binding the pod's delayed claims on its node takes: PVs to pre-bind to claims
    (static bindings), and claims to provision there (`selected-node`)."""

    static: list[tuple[PersistentVolume, PersistentVolumeClaim]] = field(default_factory=list)
    provision: list[PersistentVolumeClaim] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.static and not self.provision

    def claims(self) -> list[PersistentVolumeClaim]:
        return [claim for _, claim in self.static] + self.provision


def is_claim_bound(claim: PersistentVolumeClaim) -> bool:
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    return bool(spec.get("volumeName")) and (
        BIND_COMPLETED in annotations_of(claim) or status.get("phase") == "Bound")


def is_delayed(claim: PersistentVolumeClaim, cache: VolumeCache) -> bool:
    """Whether the claim's class binds `WaitForFirstConsumer` (no class, or an unknown
    one, binds at once)."""
    name = claim_class(claim)
    found = cache.storage_class(name) if name else None
    return found is not None and found.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def _claim_problem(pod: Pod, wanted: PodClaim,
                   claim: PersistentVolumeClaim | None) -> str | None:
    if claim is None:
        if wanted.ephemeral:
            return ("waiting for ephemeral volume controller to create the "
                    f'persistentvolumeclaim "{wanted.name}"')
        return f'persistentvolumeclaim "{wanted.name}" not found'
    if (claim.get("status") or {}).get("phase") == "Lost":
        volume = (claim.get("spec") or {}).get("volumeName") or ""
        return (f'persistentvolumeclaim "{wanted.name}" bound to non-existent '
                f'persistentvolume "{volume}"')
    if is_being_deleted(claim):
        return f'persistentvolumeclaim "{wanted.name}" is being deleted'
    return volume_is_for_pod(pod, claim) if wanted.ephemeral else None


def pod_claims(pod: Pod, cache: VolumeCache) -> PodClaims:
    """VolumeBinding's PreFilter: the pod's claims, bound or delayed, or the problem that
    keeps it off every node."""
    result = PodClaims()
    namespace = namespace_of(pod) or "default"
    immediate = False
    for wanted in claims_of(pod):
        claim = cache.claim(namespace, wanted.name)
        problem = _claim_problem(pod, wanted, claim)
        if problem is not None:
            return PodClaims(problem=problem)
        assert claim is not None
        if is_claim_bound(claim):
            result.bound.append(claim)
        elif is_delayed(claim, cache) and not (claim.get("spec") or {}).get("volumeName"):
            result.delayed.append(claim)
        else:
            immediate = True
    if immediate:
        return PodClaims(problem=UNBOUND_IMMEDIATE)
    return result


def volume_fits_node(volume: PersistentVolume, node: Node) -> bool:
    """The PV's `nodeAffinity.required` terms (if any) match the node (`CheckNodeAffinity`)."""
    required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    return matches_node_selector_terms(required.get("nodeSelectorTerms") or [], node)


def matching_volume(claim: PersistentVolumeClaim, cache: VolumeCache, node: Node,
                    excluded: set[str]) -> PersistentVolume | None:
    """`FindMatchingVolume` on the scheduler's path, over the PVs of the claim's class (as
    kube-scheduler lists them from its PV cache)."""
    wanted = claim_class(claim)
    return find_matching_volume(
        claim, (v for v in cache.volumes() if volume_class(v) == wanted),
        fits_node=lambda volume: volume_fits_node(volume, node), excluded=excluded,
        delay_binding=True)


def _provisionable(claim: PersistentVolumeClaim, node: Node, cache: VolumeCache) -> bool:
    """A class that provisions, whose `allowedTopologies` (if any) include the node."""
    found = cache.storage_class(claim_class(claim))
    if found is None or found.get("provisioner") in (None, "", NO_PROVISIONER):
        return False
    topologies = found.get("allowedTopologies")
    if not topologies:
        return True
    labels = labels_of(node)
    return any(all(labels.get(e["key"]) in e["values"]
                   for e in term.get("matchLabelExpressions") or [])
               for term in topologies)


def find_volumes(claims: PodClaims, node: Node, cache: VolumeCache,
                 taken: set[str]) -> tuple[list[str], VolumePlan]:
    """VolumeBinding's Filter on one node: the refusals, and the plan if there are none.
    `taken`: PVs assumed for other pods' claims, not to be chosen again."""
    reasons: list[str] = []
    for claim in claims.bound:
        volume = cache.volume((claim.get("spec") or {}).get("volumeName") or "")
        if volume is None:
            reasons.append(PV_NOT_EXIST)
        elif not volume_fits_node(volume, node) and NODE_CONFLICT not in reasons:
            reasons.append(NODE_CONFLICT)
    if reasons:
        return reasons, VolumePlan()
    plan = VolumePlan()
    chosen = set(taken)
    for claim in sorted(claims.delayed, key=requested_storage):
        selected = annotations_of(claim).get(SELECTED_NODE)
        if selected is not None:
            if selected != name_of(node) or not _provisionable(claim, node, cache):
                return [BIND_CONFLICT], VolumePlan()
            plan.provision.append(claim)
            continue
        volume = matching_volume(claim, cache, node, chosen)
        if volume is not None:
            chosen.add(name_of(volume))
            plan.static.append((volume, claim))
        elif _provisionable(claim, node, cache):
            plan.provision.append(claim)
        else:
            return [BIND_CONFLICT], VolumePlan()
    return [], plan


def uses_read_write_once_pod(claim: PersistentVolumeClaim) -> bool:
    return READ_WRITE_ONCE_POD in ((claim.get("spec") or {}).get("accessModes") or [])


def read_write_once_pod_conflicts(pod: Pod, cache: VolumeCache,
                                  users: Iterable[tuple[str, Pod]]) -> list[str]:
    """The pod's `ReadWriteOncePod` claims that another pod already uses. `users`:
    `(namespace/claim, pod)` for every scheduled (or assumed), not finished pod."""
    namespace = namespace_of(pod) or "default"
    mine = {f"{namespace}/{c.name}": c.name for c in claims_of(pod)}
    wanted = {key for key, name in mine.items()
              if (claim := cache.claim(namespace, name)) is not None
              and uses_read_write_once_pod(claim)}
    return sorted({mine[key] for key, other in users
                   if key in wanted and uid_of(other) != uid_of(pod)})
