"""Fields that may not change on update, per kind, as Kubernetes enforces them.

`update_causes(kind, new, old)` compares the JSON objects (both defaulted):
metadata identity for every kind, selectors of the workload controllers,
most of a StatefulSet's, Job's, PVC's and Pod's spec, a Service's cluster
IP, the data of ConfigMaps and Secrets marked `immutable`, a PersistentVolume's
source, and a StorageClass's provisioner, parameters and policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from minik.api.errors import Cause
from minik.api.models import ephemeral
from minik.api.models.base import forbidden, immutable
from minik.api.models.quantity import is_quantity, parse_quantity
from minik.api.models.rbac import role_ref_causes
from minik.api.resources import EPHEMERAL_CONTAINERS

STATEFULSET_MUTABLE = (
    "replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
STATEFULSET_MESSAGE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
    "forbidden"
)
PVC_MESSAGE = (
    "spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)
POD_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
FIXED_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec.selector",),
    "ReplicaSet": ("spec.selector",),
    "DaemonSet": ("spec.selector",),
    "StatefulSet": ("spec.selector",),
    "Job": ("spec.selector", "spec.template", "spec.completionMode", "spec.podFailurePolicy",
            "spec.backoffLimitPerIndex", "spec.successPolicy"),
    "Secret": ("type",),
    "EndpointSlice": ("addressType",),
}


def get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def update_causes(kind: str, new: dict[str, Any], old: dict[str, Any], *,
                  subresource: str | None = None) -> list[Cause]:
    causes = list(_changed(new, old, ("metadata.name", "metadata.namespace", "metadata.uid",
                                      "metadata.creationTimestamp")))
    causes += _changed(new, old, FIXED_PATHS.get(kind, ()))
    if kind == "Pod" and subresource == EPHEMERAL_CONTAINERS:
        return causes + ephemeral.update_causes(get(new, "spec.ephemeralContainers") or [],
                                                get(old, "spec.ephemeralContainers") or [])
    special = _SPECIAL.get(kind)
    if special is not None:
        causes += special(new, old)
    return causes


def _changed(new: dict[str, Any], old: dict[str, Any], paths: Iterable[str]) -> Iterator[Cause]:
    """A path changes when both sides set it and the values differ."""
    for path in paths:
        before, after = get(old, path), get(new, path)
        if before not in (None, "") and after not in (None, "") and before != after:
            yield immutable(path, after)


def _without(spec: Any, keys: Iterable[str]) -> dict[str, Any]:
    spec = spec if isinstance(spec, dict) else {}
    dropped = set(keys)
    return {k: v for k, v in spec.items() if k not in dropped and v is not None}


def _statefulset(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    before = _without(old.get("spec"), STATEFULSET_MUTABLE)
    after = _without(new.get("spec"), STATEFULSET_MUTABLE)
    return [] if before == after else [forbidden("spec", STATEFULSET_MESSAGE)]


def _storage(claim: dict[str, Any]) -> Any:
    return get(claim, "spec.resources.requests.storage")


def _pvc_mask(spec: Any, old_spec: dict[str, Any], *, bound: bool) -> dict[str, Any]:
    """The claim's spec without what an update may change: `volumeName` and
    `storageClassName` until set, and a bound claim's storage request."""
    mutable = ["volumeAttributesClassName"]
    mutable += [k for k in ("volumeName", "storageClassName") if not old_spec.get(k)]
    masked = _without(spec, mutable)
    requests = get(masked, "resources.requests")
    if bound and isinstance(requests, dict):
        masked["resources"] = {**masked["resources"],
                               "requests": _without(requests, ("storage",))}
    return masked


def _pvc(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """`ValidatePersistentVolumeClaimUpdate`; shrinking is refused down to the recorded
    capacity (RecoverVolumeExpansionFailure on, as Kubernetes 1.33 has it)."""
    old_spec = old.get("spec") or {}
    bound = get(new, "status.phase") == "Bound"
    same = _pvc_mask(new.get("spec"), old_spec, bound=bound) == _pvc_mask(
        old_spec, old_spec, bound=bound)
    causes = [] if same else [forbidden("spec", PVC_MESSAGE)]
    before, after = _quantity(_storage(old)), _quantity(_storage(new))
    capacity = _quantity(get(old, "status.capacity.storage"))
    if before is not None and after is not None and after < before and after <= (capacity or 0):
        causes.append(forbidden("spec.resources.requests.storage",
                                "field can not be less than status.capacity"))
    return causes


def _quantity(value: Any) -> Decimal | None:
    return parse_quantity(value) if value is not None and is_quantity(value) else None


PV_NOT_SOURCE = frozenset((
    "capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
    "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName",
))


def _pv(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """`ValidatePersistentVolumeUpdate`: the source and the volume mode stay."""
    def source(pv: dict[str, Any]) -> dict[str, Any]:
        return _without({k: v for k, v in (pv.get("spec") or {}).items()
                         if k not in PV_NOT_SOURCE}, ())

    causes = [] if source(new) == source(old) else [
        forbidden("spec.persistentvolumesource",
                  "spec.persistentvolumesource is immutable after creation")]
    mode = get(new, "spec.volumeMode")
    if mode != get(old, "spec.volumeMode"):
        causes.append(immutable("volumeMode", mode))
    return causes


def _storage_class(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """`ValidateStorageClassUpdate`."""
    causes = [forbidden(key, f"updates to {key} are forbidden.")
              for key in ("parameters", "provisioner", "reclaimPolicy")
              if (new.get(key) or None) != (old.get(key) or None)]
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        causes.append(immutable("volumeBindingMode", new.get("volumeBindingMode")))
    return causes


def _pod_mask(spec: Any, old_spec: dict[str, Any]) -> dict[str, Any]:
    mutable = ["activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"]
    if not old_spec.get("nodeName"):
        mutable.append("nodeName")
    masked = _without(spec, mutable)
    for group in ("containers", "initContainers"):
        if isinstance(masked.get(group), list):
            masked[group] = [_without(c, ("image",)) for c in masked[group]]
    return masked


def _pod(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    old_spec = old.get("spec") or {}
    same = _pod_mask(new.get("spec"), old_spec) == _pod_mask(old_spec, old_spec)
    return [] if same else [forbidden("spec", POD_MESSAGE)]


def _service(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """`ValidateServiceUpdate`: a set clusterIP stays unless the Service is, or becomes,
    an ExternalName."""
    before, after = get(old, "spec.clusterIP") or "", get(new, "spec.clusterIP") or ""
    types = {get(old, "spec.type"), get(new, "spec.type")}
    if "ExternalName" in types or not before or before == after:
        return []
    return [immutable("spec.clusterIP", after)]


def _immutable_data(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes = []
    if not new.get("immutable"):
        causes.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
    for key in ("data", "binaryData"):
        if (new.get(key) or {}) != (old.get(key) or {}):
            causes.append(forbidden(key, IMMUTABLE_WHEN_SET))
    if new.get("stringData"):
        causes.append(forbidden("stringData", IMMUTABLE_WHEN_SET))
    return causes


_SPECIAL = {
    "StatefulSet": _statefulset,
    "PersistentVolumeClaim": _pvc,
    "PersistentVolume": _pv,
    "StorageClass": _storage_class,
    "Pod": _pod,
    "Service": _service,
    "ConfigMap": _immutable_data,
    "Secret": _immutable_data,
    "RoleBinding": role_ref_causes,
    "ClusterRoleBinding": role_ref_causes,
}
