"""The storage admission plugins, and the default StorageClass the server starts with.

Kubernetes runs these as admission plugins on writes to claims and volumes;
here `ObjectStorage` calls the kind's `Admission` after validating a write
of the main resource (never of `status`):

- DefaultStorageClass (mutating, create): a claim with no class, neither
  `spec.storageClassName` (an empty string counts as set: "no class") nor the
  beta annotation, gets the default class. Of several classes marked default
  (`storageclass.kubernetes.io/is-default-class: "true"`, or the beta
  annotation) the newest wins, the first name on a tie (`GetDefaultClass`).
- StorageObjectInUseProtection (mutating, create): a claim gets the
  `kubernetes.io/pvc-protection` finalizer and a volume
  `kubernetes.io/pv-protection`; the protection controllers remove them.
- PersistentVolumeClaimResize (validating, update): a claim's request may
  only grow when its class exists and allows expansion; otherwise 403 with
  Kubernetes' message. Shrinking and growth of an unbound claim are the
  update validation's business (`minik.api.models.updates`).

`ensure_default_storage_class` creates the class `standard` at start when
the store holds no StorageClass at all: a fresh instance (or one made before
classes were provisioned) gets it, while a user who deleted `standard` and
keeps a class of their own is not overruled at the next start. Deleting every
class brings `standard` back at the next start, as Kubernetes' addon manager
(`EnsureExists`) does for kind's and minikube's default class.
"""

from __future__ import annotations

from typing import Any

from minik.api import errors, meta
from minik.api.resources import STORAGECLASSES
from minik.api.volumes import (
    IS_DEFAULT_CLASS,
    PROVISIONER,
    PV_PROTECTION,
    PVC_PROTECTION,
    claim_class_or_none,
    newest_default_class,
    requested_storage,
)
from minik.store import Store

JsonObject = dict[str, Any]

DEFAULT_CLASS = "standard"
RESIZE_REFUSED = ("only dynamically provisioned pvc can be resized and the storageclass that "
                  "provisions the pvc must support resize")


def default_storage_class() -> JsonObject:
    """The class `standard`: Docker volumes, made once a pod using the claim is placed."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS, "annotations": {IS_DEFAULT_CLASS: "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True}


async def storage_classes(store: Store) -> list[JsonObject]:
    records, _ = await store.list(STORAGECLASSES.prefix(None))
    return [r.value for r in records]


def _add_finalizer(obj: JsonObject, finalizer: str) -> None:
    md = meta.metadata(obj)
    finalizers = list(md.get("finalizers") or [])
    if finalizer not in finalizers:
        md["finalizers"] = [*finalizers, finalizer]


class ClaimAdmission:
    """DefaultStorageClass and pvc-protection on create, PersistentVolumeClaimResize on
    update."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> None:
        if old is None:
            await self._set_default_class(store, new)
            _add_finalizer(new, PVC_PROTECTION)
            return
        if requested_storage(new) > requested_storage(old):
            await self._check_resize(store, new)

    @staticmethod
    async def _set_default_class(store: Store, claim: JsonObject) -> None:
        if claim_class_or_none(claim) is not None:
            return
        default = newest_default_class(await storage_classes(store))
        if default is not None:
            claim.setdefault("spec", {})["storageClassName"] = meta.metadata(default)["name"]

    @staticmethod
    async def _check_resize(store: Store, claim: JsonObject) -> None:
        name = claim_class_or_none(claim)
        record = await store.get(STORAGECLASSES.key(None, name)) if name else None
        if record is None or not record.value.get("allowVolumeExpansion"):
            claim_name = meta.metadata(claim).get("name", "")
            raise errors.forbidden(
                f'persistentvolumeclaims "{claim_name}" is forbidden: {RESIZE_REFUSED}')


class VolumeAdmission:
    """pv-protection on create."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> None:
        if old is None:
            _add_finalizer(new, PV_PROTECTION)


STORAGE_ADMISSION: dict[str, ClaimAdmission | VolumeAdmission] = {
    "PersistentVolumeClaim": ClaimAdmission(),
    "PersistentVolume": VolumeAdmission(),
}
