"""What happens to a Released volume: its `persistentVolumeReclaimPolicy`.

As Kubernetes' `reclaimVolume`: Retain leaves the volume Released (and its
data) until an administrator acts. Delete of a volume an external
provisioner made (`pv.kubernetes.io/provisioned-by` not `kubernetes.io/...`,
minik's Docker volumes among them) is that provisioner's deleter's job (the
node agent's); the controller does nothing. Delete of any other volume needs
an in-tree deleter, and minik runs none: the volume goes Failed with a
VolumeFailedDelete event. (Kubernetes' hostPath deleter only removes paths
under /tmp, meant for single-node tests; minik's control plane never touches
the host's files, so a static hostPath or local volume is never deleted by
it.) Recycle likewise has no recycler: Failed with VolumeFailedRecycle. A
volume already Failed is left as it is.
"""

from __future__ import annotations

from minik.api.meta import annotations_of, name_of
from minik.api.objects import PersistentVolume
from minik.api.volumes import PROVISIONED_BY
from minik.controllers.volume.writes import BindingWrites
from minik.machinery.events import EventRecorder

NO_RECYCLER = "No recycler plugin found for the volume!"
UNKNOWN_POLICY = "Volume has unrecognized PersistentVolumeReclaimPolicy"


def external_deleter(volume: PersistentVolume) -> bool:
    provisioner = annotations_of(volume).get(PROVISIONED_BY, "")
    return bool(provisioner) and not provisioner.startswith("kubernetes.io/")


async def reclaim(writes: BindingWrites, events: EventRecorder,
                  volume: PersistentVolume) -> None:
    if (volume.get("status") or {}).get("phase") != "Released":
        return
    policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy")
    if policy == "Retain" or (policy == "Delete" and external_deleter(volume)):
        return
    if policy == "Delete":
        reason = "VolumeFailedDelete"
        message = (f'error getting deleter volume plugin for volume "{name_of(volume)}": '
                   "no deletable volume plugin matched")
    elif policy == "Recycle":
        reason, message = "VolumeFailedRecycle", NO_RECYCLER
    else:
        reason, message = "VolumeUnknownReclaimPolicy", UNKNOWN_POLICY
    events.record(volume, "Warning", reason, message)
    await writes.set_volume_phase(volume, "Failed", message)
