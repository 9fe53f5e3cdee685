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
  that fits it on the node (class, size, access modes, volume mode,
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
from decimal import Decimal
from typing import Protocol

from minik.api.ephemeral import volume_claim_name, volume_is_for_pod
from minik.api.errors import ApiError
from minik.api.meta import (
    annotations_of,
    is_being_deleted,
    labels_of,
    name_of,
    namespace_of,
    uid_of,
)
from minik.api.models.quantity import parse_quantity
from minik.api.objects import JsonObject, Node, Pod
from minik.api.selectors.labels import LabelSelector
from minik.scheduler.fit import matches_node_selector_terms

SELECTED_NODE = "volume.kubernetes.io/selected-node"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
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

    def claim(self, namespace: str, name: str) -> JsonObject | None: ...

    def volume(self, name: str) -> JsonObject | None: ...

    def volumes(self) -> list[JsonObject]: ...

    def storage_class(self, name: str) -> JsonObject | None: ...


@dataclass(frozen=True, slots=True)
class PodClaim:
    """One claim a pod's volume names; `ephemeral` when the pod's own template makes it."""

    name: str
    ephemeral: bool


@dataclass(slots=True)
class PodClaims:
    """The pod's claims sorted as VolumeBinding's PreFilter sorts them, or why it must wait."""

    problem: str | None = None
    bound: list[JsonObject] = field(default_factory=list)
    delayed: list[JsonObject] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.bound or self.delayed)


@dataclass(slots=True)
class VolumePlan:
    """What binding the pod's delayed claims on its node takes: PVs to pre-bind to claims
    (static bindings), and claims to provision there (`selected-node`)."""

    static: list[tuple[JsonObject, JsonObject]] = field(default_factory=list)
    provision: list[JsonObject] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.static and not self.provision

    def claims(self) -> list[JsonObject]:
        return [claim for _, claim in self.static] + self.provision


def claims_of(pod: Pod) -> list[PodClaim]:
    """The claims the pod's volumes use, in the order of its volumes."""
    found = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("persistentVolumeClaim")
        if source is not None:
            found.append(PodClaim(str(source.get("claimName") or ""), False))
        elif volume.get("ephemeral") is not None:
            found.append(PodClaim(volume_claim_name(pod, volume), True))
    return found


def claim_keys(pod: Pod) -> list[str]:
    """`namespace/claim` of every claim the pod uses: an informer index."""
    namespace = namespace_of(pod) or ""
    return [f"{namespace}/{claim.name}" for claim in claims_of(pod)]


def is_claim_bound(claim: JsonObject) -> bool:
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    return bool(spec.get("volumeName")) and (
        BIND_COMPLETED in annotations_of(claim) or status.get("phase") == "Bound")


def claim_class(claim: JsonObject) -> str:
    """The claim's class: `spec.storageClassName`, else the beta annotation, else ""."""
    name = (claim.get("spec") or {}).get("storageClassName")
    if name is None:
        name = annotations_of(claim).get(BETA_STORAGE_CLASS)
    return name or ""


def volume_class(volume: JsonObject) -> str:
    name = (volume.get("spec") or {}).get("storageClassName")
    if name is None:
        name = annotations_of(volume).get(BETA_STORAGE_CLASS)
    return name or ""


def is_delayed(claim: JsonObject, cache: VolumeCache) -> bool:
    """Whether the claim's class binds `WaitForFirstConsumer` (no class, or an unknown
    one, binds at once)."""
    name = claim_class(claim)
    found = cache.storage_class(name) if name else None
    return found is not None and found.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def _claim_problem(pod: Pod, wanted: PodClaim, claim: JsonObject | None) -> str | None:
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
    namespace = namespace_of(pod) or ""
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


def volume_fits_node(volume: JsonObject, node: Node) -> bool:
    """The PV's `nodeAffinity.required` terms (if any) match the node."""
    affinity = (volume.get("spec") or {}).get("nodeAffinity") or {}
    required = affinity.get("required")
    if not required:
        return True
    return matches_node_selector_terms(required.get("nodeSelectorTerms") or [], node)


def _storage(values: JsonObject | None) -> Decimal:
    try:
        return parse_quantity((values or {}).get("storage", 0))
    except (ValueError, TypeError):
        return Decimal(0)


def requested_storage(claim: JsonObject) -> Decimal:
    return _storage(((claim.get("spec") or {}).get("resources") or {}).get("requests"))


def is_volume_bound_to(volume: JsonObject, claim: JsonObject) -> bool:
    """The PV's `claimRef` names the claim (and its uid, when it has one)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    return (ref.get("name") == name_of(claim) and ref.get("namespace") == namespace_of(claim)
            and (not ref.get("uid") or ref.get("uid") == uid_of(claim)))


def _selector_matches(claim: JsonObject, volume: JsonObject) -> bool:
    selector = (claim.get("spec") or {}).get("selector")
    if selector is None:
        return True
    try:
        return LabelSelector.from_spec(selector).matches(labels_of(volume))
    except ApiError:
        return False


def _fits_claim(volume: JsonObject, claim: JsonObject) -> bool:
    """Available, free, of the claim's class and mode, selected, with every access mode."""
    spec, claim_spec = volume.get("spec") or {}, claim.get("spec") or {}
    return ((volume.get("status") or {}).get("phase") == "Available"
            and not spec.get("claimRef")
            and volume_class(volume) == claim_class(claim)
            and _selector_matches(claim, volume)
            and set(claim_spec.get("accessModes") or []) <= set(spec.get("accessModes") or []))


def matching_volume(claim: JsonObject, volumes: Iterable[JsonObject], node: Node,
                    excluded: set[str]) -> JsonObject | None:
    """Kubernetes' `FindMatchingVolume` on the scheduler's path: the PV pre-bound to the
    claim if it fits the node, else the smallest Available PV that fits claim and node."""
    requested = requested_storage(claim)
    mode = (claim.get("spec") or {}).get("volumeMode") or "Filesystem"
    best: tuple[Decimal, JsonObject] | None = None
    for volume in volumes:
        spec = volume.get("spec") or {}
        size = _storage(spec.get("capacity"))
        if (name_of(volume) in excluded or is_being_deleted(volume) or size < requested
                or (spec.get("volumeMode") or "Filesystem") != mode):
            continue
        if spec.get("claimRef") and not is_volume_bound_to(volume, claim):
            continue
        fits_node = volume_fits_node(volume, node)
        if is_volume_bound_to(volume, claim):
            return volume if fits_node else None
        if fits_node and _fits_claim(volume, claim) and (best is None or size < best[0]):
            best = (size, volume)
    return None if best is None else best[1]


def _provisionable(claim: JsonObject, node: Node, cache: VolumeCache) -> bool:
    """A class that provisions, whose `allowedTopologies` (if any) include the node."""
    found = cache.storage_class(claim_class(claim))
    if found is None or found.get("provisioner") in (None, "", NO_PROVISIONER):
        return False
    topologies = found.get("allowedTopologies")
    if not topologies:
        return True
    labels = labels_of(node)
    return any(all(labels.get(e.get("key")) in (e.get("values") or [])
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
    volumes = cache.volumes()
    for claim in sorted(claims.delayed, key=requested_storage):
        selected = annotations_of(claim).get(SELECTED_NODE)
        if selected is not None:
            if selected != name_of(node) or not _provisionable(claim, node, cache):
                return [BIND_CONFLICT], VolumePlan()
            plan.provision.append(claim)
            continue
        volume = matching_volume(claim, volumes, node, chosen)
        if volume is not None:
            chosen.add(name_of(volume))
            plan.static.append((volume, claim))
        elif _provisionable(claim, node, cache):
            plan.provision.append(claim)
        else:
            return [BIND_CONFLICT], VolumePlan()
    return [], plan


def uses_read_write_once_pod(claim: JsonObject) -> bool:
    return READ_WRITE_ONCE_POD in ((claim.get("spec") or {}).get("accessModes") or [])


def read_write_once_pod_conflicts(pod: Pod, cache: VolumeCache,
                                  users: Iterable[tuple[str, Pod]]) -> list[str]:
    """The pod's `ReadWriteOncePod` claims that another pod already uses. `users`:
    `(namespace/claim, pod)` for every scheduled (or assumed), not finished pod."""
    namespace = namespace_of(pod) or ""
    mine = {f"{namespace}/{c.name}": c.name for c in claims_of(pod)}
    wanted = {key for key, name in mine.items()
              if (claim := cache.claim(namespace, name)) is not None
              and uses_read_write_once_pod(claim)}
    return sorted({mine[key] for key, other in users
                   if key in wanted and uid_of(other) != uid_of(pod)})
