"""Which PersistentVolume a claim binds to: Kubernetes' `persistentvolume/index.go`.

A pure function of the claim and the volumes, tested alone. Volumes are
grouped by their access modes; only groups holding every mode the claim asks
for are tried, those with the fewest modes first, so that a claim for
ReadWriteOnce takes an RWO volume before an RWO+RWX one. Within a group
(`find_matching_volume`): a volume pre-bound to this claim (`claimRef`) wins
at once; otherwise the smallest Available volume that is big enough, of the
same volume mode and class, whose labels match the claim's selector and that
is not being deleted. A volume bound to another claim is never a candidate.
With delayed binding (WaitForFirstConsumer, no node chosen yet) only a
pre-bound volume is taken: the scheduler chooses the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def _modes(obj: PersistentVolume | PersistentVolumeClaim) -> frozenset[str]:
    return frozenset((obj.get("spec") or {}).get("accessModes") or [])


def find_matching_volume(claim: PersistentVolumeClaim, volumes: Iterable[PersistentVolume], *,
                         delay_binding: bool) -> PersistentVolume | None:
    """`findMatchingVolume` on the controller's path (no node)."""
    requested = requested_storage(claim)
    wanted_class = claim_class(claim)
    spec = claim.get("spec") or {}
    selector = LabelSelector.from_spec(spec["selector"]) if spec.get("selector") else None
    smallest: PersistentVolume | None = None
    for volume in volumes:
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref and not is_volume_bound_to_claim(volume, claim):
            continue
        if volume_capacity(volume) < requested:
            continue
        if volume_mode(volume.get("spec")) != volume_mode(spec):
            continue
        if (volume.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if is_volume_bound_to_claim(volume, claim):
            return volume
        if delay_binding:
            continue
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches(
                (volume.get("metadata") or {}).get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class:
            continue
        if smallest is None or volume_capacity(smallest) > volume_capacity(volume):
            smallest = volume
    return smallest


def find_best_match(claim: PersistentVolumeClaim, volumes: Iterable[PersistentVolume], *,
                    delay_binding: bool = False) -> PersistentVolume | None:
    """`findBestMatchForClaim`: try the access-mode groups that can serve the claim, the
    fewest modes first."""
    wanted = _modes(claim)
    groups: dict[frozenset[str], list[PersistentVolume]] = {}
    for volume in volumes:
        groups.setdefault(_modes(volume), []).append(volume)
    candidates = sorted((modes for modes in groups if wanted <= modes),
                        key=lambda modes: (len(modes), sorted(modes)))
    for modes in candidates:
        found = find_matching_volume(claim, groups[modes], delay_binding=delay_binding)
        if found is not None:
            return found
    return None


def volume_mismatch(volume: PersistentVolume, claim: PersistentVolumeClaim) -> str | None:
    """`checkVolumeSatisfyClaim`: why the volume a claim names cannot serve it, or None."""
    name = (volume.get("metadata") or {}).get("name", "")
    if (volume.get("metadata") or {}).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{name}"'
    if volume_capacity(volume) < requested_storage(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode(volume.get("spec")) != volume_mode(claim.get("spec")):
        return "incompatible volumeMode"
    if not _modes(claim) <= _modes(volume):
        return "incompatible accessMode"
    return None
