"""Configuration and storage: ConfigMap, Secret, PersistentVolume,
PersistentVolumeClaim, StorageClass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer
from minik.api.printers.formatting import field


@printer("ConfigMap", NAME, col("Data", "Number of data and binaryData keys."), AGE)
def _config_map(obj: dict[str, Any], now: datetime) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [name_cell(obj), count, age_cell(obj, now)]


@printer("Secret", NAME, col("Type", "Used to facilitate programmatic handling of secret data."),
         col("Data", "Number of data keys."), AGE)
def _secret(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}),
            age_cell(obj, now)]


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: list[str] | None) -> str:
    return ",".join(short for mode, short in _ACCESS_MODES.items() if mode in (modes or []))


def _volume_class(obj: dict[str, Any]) -> str:
    beta = field(obj, "metadata.annotations", {}).get("volume.beta.kubernetes.io/storage-class")
    return str(beta if beta is not None else field(obj, "spec.storageClassName", ""))


def _volume_phase(obj: dict[str, Any]) -> str:
    if field(obj, "metadata.deletionTimestamp"):
        return "Terminating"
    return str(field(obj, "status.phase", ""))


@printer(
    "PersistentVolume", NAME, col("Capacity", "The capacity of the volume."),
    col("Access Modes", "The ways the volume can be mounted."),
    col("Reclaim Policy", "What happens to the volume when released from its claim."),
    col("Status", "The phase of the volume."), col("Claim", "The claim bound to the volume."),
    col("StorageClass", "StorageClass of the pv"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    col("Reason", "Why the volume is in this phase."), AGE,
    col("VolumeMode", "Whether the volume is a filesystem or a raw block device.", wide=True),
)
def _persistent_volume(pv: dict[str, Any], now: datetime) -> list[Any]:
    spec = pv.get("spec") or {}
    claim = spec.get("claimRef")
    return [name_cell(pv), field(spec, "capacity.storage", "0"),
            _access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), _volume_phase(pv),
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
            _volume_class(pv), spec.get("volumeAttributesClassName") or "<unset>",
            field(pv, "status.reason", ""), age_cell(pv, now), spec.get("volumeMode") or "<unset>"]


@printer(
    "PersistentVolumeClaim", NAME, col("Status", "The phase of the claim."),
    col("Volume", "The volume bound to the claim."), col("Capacity", "The bound capacity."),
    col("Access Modes", "The ways the bound volume can be mounted."),
    col("StorageClass", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), AGE,
    col("VolumeMode", "Whether the volume is a filesystem or a raw block device.", wide=True),
)
def _persistent_volume_claim(pvc: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    bound = bool(spec.get("volumeName"))
    return [name_cell(pvc), _volume_phase(pvc), spec.get("volumeName", ""),
            field(status, "capacity.storage", "0") if bound else "",
            _access_modes(status.get("accessModes")) if bound else "",
            _volume_class(pvc), spec.get("volumeAttributesClassName") or "<unset>",
            age_cell(pvc, now), spec.get("volumeMode") or "<unset>"]


_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class",
                  "storageclass.beta.kubernetes.io/is-default-class")


@printer(
    "StorageClass", NAME, col("Provisioner", "The volume plugin that provisions volumes."),
    col("ReclaimPolicy", "Reclaim policy of provisioned volumes."),
    col("VolumeBindingMode", "When volumes are provisioned and bound."),
    col("AllowVolumeExpansion", "Whether claims of this class may be expanded."), AGE,
)
def _storage_class(obj: dict[str, Any], now: datetime) -> list[Any]:
    annotations = field(obj, "metadata.annotations", {})
    default = any(annotations.get(a) == "true" for a in _DEFAULT_CLASS)
    return [name_cell(obj) + (" (default)" if default else ""), obj.get("provisioner", ""),
            obj.get("reclaimPolicy") or "Delete", obj.get("volumeBindingMode") or "Immediate",
            bool(obj.get("allowVolumeExpansion")), age_cell(obj, now)]
