"""Growing a bound claim: the part of Kubernetes' expand controller and external-resizer
minik needs.

The API lets a bound claim's request grow only on a class with
`allowVolumeExpansion` (`storage_admission`). When the request is above the
claim's `status.capacity` and the volume is one of minik's Docker volumes
(CSI driver `minik.dev/docker-volume`), the volume's `spec.capacity` and then
the claim's `status.capacity` take the new size, with the event
VolumeResizeSuccessful. A Docker volume has no size: the capacity is recorded,
never enforced, and nothing on the node changes. A volume of another kind
(a static hostPath or local volume) has no resizer here, as in Kubernetes:
the claim keeps its capacity.
"""

from __future__ import annotations

import copy

from minik.api.meta import meta_of
from minik.api.objects import PersistentVolume, PersistentVolumeClaim, StorageClass
from minik.api.resources import PERSISTENTVOLUMES
from minik.api.volumes import PROVISIONER, claim_class, quantity, requested_storage
from minik.client.aio import AsyncClient
from minik.controllers.volume.writes import BindingWrites
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Informer


class Expansion:
    """What a resize needs: the client, the binder's writes, events and the classes."""

    def __init__(self, client: AsyncClient, writes: BindingWrites, events: EventRecorder,
                 classes: Informer[StorageClass]) -> None:
        self.client = client
        self.writes = writes
        self.events = events
        self.classes = classes


def resizable(volume: PersistentVolume) -> bool:
    return ((volume.get("spec") or {}).get("csi") or {}).get("driver") == PROVISIONER


async def expand(expansion: Expansion, claim: PersistentVolumeClaim,
                 volume: PersistentVolume) -> None:
    status = claim.get("status") or {}
    if status.get("phase") != "Bound":
        return
    requested = requested_storage(claim)
    if requested <= quantity((status.get("capacity") or {}).get("storage")):
        return
    storage_class = expansion.classes.indexer.get(claim_class(claim))
    expandable = storage_class is not None and storage_class.get("allowVolumeExpansion")
    if not expandable or not resizable(volume):
        return
    spec = claim.get("spec")
    resources = spec.get("resources") if spec else None
    size = ((resources or {}).get("requests") or {}).get("storage")
    if quantity(((volume.get("spec") or {}).get("capacity") or {}).get("storage")) < requested:
        grown = copy.deepcopy(volume)
        grown.setdefault("spec", {}).setdefault("capacity", {})["storage"] = str(size)
        await expansion.client.replace(PERSISTENTVOLUMES, None, meta_of(volume)["name"], grown)
    new_status = copy.deepcopy(status)
    new_status["capacity"] = {**(status.get("capacity") or {}), "storage": str(size)}
    await expansion.writes.write_claim_status(claim, new_status)
    expansion.events.record(claim, "Normal", "VolumeResizeSuccessful",
                            "Resize volume succeeded")
