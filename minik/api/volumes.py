"""The vocabulary of persistent storage shared by the API server, the controllers, the
scheduler and the node: annotations, finalizers, and how to read a claim's or a
volume's class, size and binding (`storagehelpers` and `pvutil` in Kubernetes).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from minik.api.ephemeral import volume_claim_name
from minik.api.meta import meta_of, namespace_of
from minik.api.models.quantity import is_quantity, parse_quantity
from minik.api.objects import AnyObject, JsonObject, PersistentVolume, PersistentVolumeClaim, Pod

T = TypeVar("T", bound=AnyObject)

PROVISIONER = "minik.dev/docker-volume"
"""The provisioner (and CSI driver) of minik's Docker volumes."""
NO_PROVISIONER = "kubernetes.io/no-provisioner"

IS_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def _annotations(obj: AnyObject) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def is_default_class(storage_class: AnyObject) -> bool:
    """`IsDefaultAnnotation`: either annotation says "true"."""
    annotations = _annotations(storage_class)
    return "true" in (annotations.get(IS_DEFAULT_CLASS), annotations.get(BETA_IS_DEFAULT_CLASS))


def newest_default_class(classes: list[T]) -> T | None:
    """`GetDefaultClass`: the newest of the classes marked default, by name on a tie."""
    defaults = sorted((c for c in classes if is_default_class(c)),
                      key=lambda c: meta_of(c).get("name", ""))
    defaults.sort(key=lambda c: meta_of(c).get("creationTimestamp") or "", reverse=True)
    return defaults[0] if defaults else None


def claim_class_or_none(claim: PersistentVolumeClaim | dict[str, Any]) -> str | None:
    """The claim's class: the beta annotation first, then the field; None when neither
    (an empty string is a class too: "none")."""
    annotations = _annotations(claim)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    name = (claim.get("spec") or {}).get("storageClassName")
    return None if name is None else str(name)


def claim_class(claim: PersistentVolumeClaim) -> str:
    """`GetPersistentVolumeClaimClass`: "" when it has none."""
    return claim_class_or_none(claim) or ""


def volume_class(volume: PersistentVolume) -> str:
    """`GetPersistentVolumeClass`: the beta annotation first, then the field."""
    annotations = _annotations(volume)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return (volume.get("spec") or {}).get("storageClassName") or ""


def quantity(value: Any) -> Decimal:
    """A storage quantity; absent or malformed counts as zero."""
    return parse_quantity(value) if value is not None and is_quantity(value) else Decimal(0)


def requested_storage(claim: PersistentVolumeClaim | dict[str, Any]) -> Decimal:
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return quantity(requests.get("storage"))


def volume_capacity(volume: PersistentVolume) -> Decimal:
    return quantity(((volume.get("spec") or {}).get("capacity") or {}).get("storage"))


def volume_mode(spec: Any) -> str:
    return (spec or {}).get("volumeMode") or "Filesystem"


def is_volume_bound_to_claim(volume: PersistentVolume, claim: PersistentVolumeClaim) -> bool:
    """`IsVolumeBoundToClaim`: the claimRef names the claim (its uid too, once set)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    md = claim.get("metadata") or {}
    if not ref or ref.get("name") != md.get("name") or ref.get("namespace") != md.get(
            "namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


@dataclass(frozen=True, slots=True)
class PodClaim:
    """The claim one of a pod's volumes uses: a `persistentVolumeClaim` volume's
    `claimName`, or `<pod>-<volume>` for an `ephemeral` volume (the pod's own claim,
    never read-only)."""

    name: str
    ephemeral: bool
    read_only: bool = False


def pod_claim(pod: Pod, volume: JsonObject) -> PodClaim | None:
    """The claim the pod's volume uses, if it uses one."""
    source = volume.get("persistentVolumeClaim")
    if source is not None:
        return PodClaim(str(source.get("claimName") or ""), False, bool(source.get("readOnly")))
    if volume.get("ephemeral") is not None:
        return PodClaim(volume_claim_name(pod, volume), True)
    return None


def claims_of(pod: Pod) -> list[PodClaim]:
    """The claims the pod's volumes use, in the order of its volumes (`podUsesPVC`)."""
    return [claim for volume in (pod.get("spec") or {}).get("volumes") or []
            if (claim := pod_claim(pod, volume)) is not None]


def claim_keys(pod: Pod) -> list[str]:
    """`namespace/claim` of every claim the pod uses: an informer index."""
    namespace = namespace_of(pod) or "default"
    return [f"{namespace}/{claim.name}" for claim in claims_of(pod)]
