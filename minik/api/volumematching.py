"""Which PersistentVolume a claim binds to: Kubernetes' `persistentvolume/util/index.go`.

One set of rules for both callers, as in Kubernetes: the PV controller
(no node: `find_best_match`) and the scheduler's VolumeBinding (a node:
`find_matching_volume` with `fits_node` and the PVs already chosen for
other claims in `excluded`). A pure function of the claim and the volumes,
tested alone.

`find_matching_volume`, over one list of volumes: a volume bound to
another claim (`claimRef`), too small, of another volume mode or being
deleted is never a candidate. A volume pre-bound to this claim wins at
once - unless, on the scheduler's path, it does not fit the node: then
nothing matches. Otherwise the smallest volume that is Available, whose
labels match the claim's selector, of the claim's class, fitting the node
and (on the scheduler's path) holding every access mode the claim asks
for. With delayed binding (WaitForFirstConsumer) and no node only a
pre-bound volume is taken: the scheduler chooses the rest.

`find_best_match` (`findBestMatchForClaim`): volumes are grouped by their
access modes; only groups holding every mode the claim asks for are tried,
those with the fewest modes first, so that a claim for ReadWriteOnce takes
an RWO volume before an RWO+RWX one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, labels_of, name_of
from minik.api.objects import PersistentVolume, PersistentVolumeClaim
from minik.api.selectors.labels import LabelSelector
from minik.api.volumes import (
    claim_class,
    is_volume_bound_to_claim,
    requested_storage,
    volume_capacity,
    volume_class,
    volume_mode,
)

FitsNode = Callable[[PersistentVolume], bool]
"""Whether a volume's `nodeAffinity` admits the node the scheduler is trying."""


def access_modes(obj: PersistentVolume | PersistentVolumeClaim) -> frozenset[str]:
    return frozenset((obj.get("spec") or {}).get("accessModes") or [])


def _selector(claim: PersistentVolumeClaim) -> LabelSelector | None:
    """The claim's selector; a malformed one (validation refuses it) selects nothing."""
    spec = (claim.get("spec") or {}).get("selector")
    if spec is None:
        return None
    try:
        return LabelSelector.from_spec(spec)
    except ApiError:
        return LabelSelector(nothing=True)


def find_matching_volume(
    claim: PersistentVolumeClaim, volumes: Iterable[PersistentVolume], *,
    fits_node: FitsNode | None = None, excluded: Collection[str] = (),
    delay_binding: bool = False,
) -> PersistentVolume | None:
    """`FindMatchingVolume`: the controller's path without `fits_node`, the scheduler's
    with it."""
    requested = requested_storage(claim)
    wanted_class = claim_class(claim)
    wanted_mode = volume_mode(claim.get("spec"))
    selector = _selector(claim)
    smallest: PersistentVolume | None = None
    for volume in volumes:
        spec = volume.get("spec") or {}
        if name_of(volume) in excluded:
            continue
        if spec.get("claimRef") and not is_volume_bound_to_claim(volume, claim):
            continue
        if volume_capacity(volume) < requested or volume_mode(spec) != wanted_mode:
            continue
        if is_being_deleted(volume):
            continue
        node_ok = fits_node is None or fits_node(volume)
        if is_volume_bound_to_claim(volume, claim):
            return volume if node_ok else None
        if fits_node is None and delay_binding:
            continue
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches(labels_of(volume)):
            continue
        if volume_class(volume) != wanted_class or not node_ok:
            continue
        if fits_node is not None and not access_modes(claim) <= access_modes(volume):
            continue
        if smallest is None or volume_capacity(smallest) > volume_capacity(volume):
            smallest = volume
    return smallest


def find_best_match(claim: PersistentVolumeClaim, volumes: Iterable[PersistentVolume], *,
                    delay_binding: bool = False) -> PersistentVolume | None:
    """`findBestMatchForClaim`: try the access-mode groups that can serve the claim, the
    fewest modes first."""
    wanted = access_modes(claim)
    groups: dict[frozenset[str], list[PersistentVolume]] = {}
    for volume in volumes:
        groups.setdefault(access_modes(volume), []).append(volume)
    candidates = sorted((modes for modes in groups if wanted <= modes),
                        key=lambda modes: (len(modes), sorted(modes)))
    for modes in candidates:
        found = find_matching_volume(claim, groups[modes], delay_binding=delay_binding)
        if found is not None:
            return found
    return None


def volume_mismatch(volume: PersistentVolume, claim: PersistentVolumeClaim) -> str | None:
    """`checkVolumeSatisfyClaim`: why the volume a claim names cannot serve it, or None."""
    if is_being_deleted(volume):
        return f'the volume is marked for deletion "{name_of(volume)}"'
    if volume_capacity(volume) < requested_storage(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode(volume.get("spec")) != volume_mode(claim.get("spec")):
        return "incompatible volumeMode"
    if not access_modes(claim) <= access_modes(volume):
        return "incompatible accessMode"
    return None
