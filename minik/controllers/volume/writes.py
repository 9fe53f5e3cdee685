"""The binder's writes: each step of a binding, a phase, an unbinding.

Kubernetes' `bind` in four steps, each a write only when something would
change, each carrying the resourceVersion it read (a stale one is a 409, and
the work queue retries the whole sync): the volume's `claimRef` (and
`bound-by-controller` when the controller chose the volume), the volume's
phase Bound, the claim's `volumeName` with `bind-completed` (and
`bound-by-controller` when the controller chose), and the claim's status
(phase, access modes, and the capacity when it becomes Bound). Each step
returns the object as stored, so the next starts from it.
"""

from __future__ import annotations

import copy

from minik.api.meta import annotations_of, meta_of
from minik.api.objects import (
    ObjectReference,
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
)
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from minik.api.volumes import BIND_COMPLETED, BOUND_BY_CONTROLLER, is_volume_bound_to_claim
from minik.client.aio import AsyncClient


def claim_reference(claim: PersistentVolumeClaim) -> ObjectReference:
    md = meta_of(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": md.get("namespace", ""),
            "name": md.get("name", ""), "uid": md.get("uid", ""), "apiVersion": "v1",
            "resourceVersion": md.get("resourceVersion", "")}


def _annotate(obj: PersistentVolume | PersistentVolumeClaim, key: str) -> None:
    obj.setdefault("metadata", {}).setdefault("annotations", {})[key] = "yes"


class BindingWrites:
    """Writes of volumes and claims through the API."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def bind_volume_to_claim(self, volume: PersistentVolume,
                                   claim: PersistentVolumeClaim) -> PersistentVolume:
        """`bindVolumeToClaim`: the volume's claimRef names the claim with its uid."""
        chosen_here = not is_volume_bound_to_claim(volume, claim)
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        md = meta_of(claim)
        changed = copy.deepcopy(volume)
        dirty = False
        if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
                md.get("name"), md.get("namespace"), md.get("uid")):
            changed.setdefault("spec", {})["claimRef"] = claim_reference(claim)
            dirty = True
        if chosen_here and BOUND_BY_CONTROLLER not in annotations_of(changed):
            _annotate(changed, BOUND_BY_CONTROLLER)
            dirty = True
        if not dirty:
            return volume
        return await self.client.replace(PERSISTENTVOLUMES, None, meta_of(volume)["name"],
                                         changed)

    async def set_volume_phase(self, volume: PersistentVolume, phase: str,
                               message: str = "") -> PersistentVolume:
        """`updateVolumePhase`: the phase and its message, written when either changes."""
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        changed = copy.deepcopy(volume)
        new_status = changed.setdefault("status", {})
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        return await self.client.replace(PERSISTENTVOLUMES, None, meta_of(volume)["name"],
                                         changed, subresource="status")

    async def bind_claim_to_volume(self, claim: PersistentVolumeClaim,
                                   volume: PersistentVolume) -> PersistentVolumeClaim:
        """`bindClaimToVolume`: `volumeName`, and the binding marked completed."""
        changed = copy.deepcopy(claim)
        dirty = False
        name = meta_of(volume)["name"]
        if (claim.get("spec") or {}).get("volumeName") != name:
            changed.setdefault("spec", {})["volumeName"] = name
            if BOUND_BY_CONTROLLER not in annotations_of(claim):
                _annotate(changed, BOUND_BY_CONTROLLER)
            dirty = True
        if BIND_COMPLETED not in annotations_of(claim):
            _annotate(changed, BIND_COMPLETED)
            dirty = True
        if not dirty:
            return claim
        md = meta_of(claim)
        return await self.client.replace(PERSISTENTVOLUMECLAIMS, md.get("namespace"),
                                         md["name"], changed)

    async def set_claim_status(self, claim: PersistentVolumeClaim, phase: str,
                               volume: PersistentVolume | None) -> PersistentVolumeClaim:
        """`updateClaimStatus`: without a volume, no access modes nor capacity; with one,
        its access modes, and its capacity when the claim becomes Bound (a difference
        later is a resize's business)."""
        status = claim.get("status") or {}
        new_status = copy.deepcopy(status)
        new_status["phase"] = phase
        if volume is None:
            new_status.pop("accessModes", None)
            new_status.pop("capacity", None)
        else:
            spec = volume.get("spec") or {}
            if spec.get("accessModes") is not None:
                new_status["accessModes"] = list(spec["accessModes"])
            if status.get("phase") != phase and spec.get("capacity") is not None:
                new_status["capacity"] = dict(spec["capacity"])
        if new_status == status:
            return claim
        return await self.write_claim_status(claim, new_status)

    async def write_claim_status(self, claim: PersistentVolumeClaim,
                                 status: PersistentVolumeClaimStatus) -> PersistentVolumeClaim:
        changed = copy.deepcopy(claim)
        changed["status"] = status
        md = meta_of(claim)
        return await self.client.replace(PERSISTENTVOLUMECLAIMS, md.get("namespace"),
                                         md["name"], changed, subresource="status")

    async def unbind_volume(self, volume: PersistentVolume) -> PersistentVolume:
        """`unbindVolume`: a volume the controller bound loses its claimRef; one a user
        pre-bound keeps it without the uid. Then it is Available."""
        changed = copy.deepcopy(volume)
        spec = changed.setdefault("spec", {})
        annotations = changed.setdefault("metadata", {}).get("annotations") or {}
        if BOUND_BY_CONTROLLER in annotations:
            spec.pop("claimRef", None)
            del annotations[BOUND_BY_CONTROLLER]
        elif "claimRef" in spec:
            spec["claimRef"]["uid"] = ""
        stored = await self.client.replace(PERSISTENTVOLUMES, None, meta_of(volume)["name"],
                                           changed)
        return await self.set_volume_phase(stored, "Available")
