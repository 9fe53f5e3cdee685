"""What the `minik.dev/docker-volume` provisioner decides, as pure functions of the objects.

The protocol is Kubernetes' own, as the PV controller and an external
provisioner (`sig-storage-lib-external-provisioner`) speak it:

- A claim is provisioned when it is not bound to a volume (`volumeName`
  empty), its annotation `volume.kubernetes.io/storage-provisioner` (or the
  beta one) names this provisioner, its class exists and names it too,
  and, for a `WaitForFirstConsumer` class, the scheduler has chosen a node
  (`volume.kubernetes.io/selected-node`): provisioning waits for that, and
  the node that provisions is the one chosen. An `Immediate` claim is
  provisioned by the node named in the class's `allowedTopologies`
  (`kubernetes.io/hostname`) or, with none, by any node's agent (minik
  has one; should two race, one PV wins and the other node removes its
  Docker volume).
- The PV is `pvc-<claim uid>`, pre-bound to the claim (`claimRef` with its
  uid; the PV controller completes the binding), with the claim's request
  as capacity, its access modes and volume mode, the class's reclaim policy
  and mount options, the annotation `pv.kubernetes.io/provisioned-by`, a
  CSI source naming the Docker volume (`minik-<instance>-pvc-<uid>`, labelled
  with the instance, the PV and the claim), and a node affinity to the
  node that holds it.
- A PV is deleted (its Docker volume first) when this provisioner made it on
  this node, it is Released, its reclaim policy is Delete and it is not
  being deleted already.

Every access mode is accepted: a Docker volume is shared by the containers
of one node (the PV's node affinity keeps its pods there). Docker volumes
have no size: the request is recorded in the PV, never enforced; mount
options cannot be applied to a Docker volume and are only recorded. Block
volumes, and claims with a label `selector` (a new PV has no labels to
match it), are refused (`ProvisioningFailed`).
"""

from __future__ import annotations

from agent import labels
from minik.api.meta import annotations_of, is_being_deleted, meta_of, name_of, uid_of
from minik.api.objects import (
    NodeSelector,
    ObjectReference,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from minik.api.volumes import (
    BETA_STORAGE_PROVISIONER,
    PROVISIONED_BY,
    PROVISIONER,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
)
from minik.api.volumes import claim_class as claim_class  # the provisioner reads it from here

HOSTNAME = "kubernetes.io/hostname"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

PV_LABEL = labels.PREFIX + "pv"
CLAIM_NAMESPACE_LABEL = labels.PREFIX + "claim-namespace"
CLAIM_NAME_LABEL = labels.PREFIX + "claim-name"


class Unprovisionable(Exception):
    """The claim asks for what a Docker volume cannot be; retrying does not help."""


def pv_name(claim: PersistentVolumeClaim) -> str:
    return f"pvc-{uid_of(claim)}"


def docker_volume_name(instance: str, claim: PersistentVolumeClaim) -> str:
    return f"minik-{instance}-{pv_name(claim)}"


def volume_labels(instance: str, claim: PersistentVolumeClaim) -> dict[str, str]:
    """Labels of a provisioned Docker volume: `docker volume ls --filter label=...` finds it
    by instance, PV or claim."""
    md = meta_of(claim)
    return {labels.INSTANCE: instance, PV_LABEL: pv_name(claim),
            CLAIM_NAMESPACE_LABEL: md.get("namespace") or "default",
            CLAIM_NAME_LABEL: md["name"]}


def _requested_provisioner(claim: PersistentVolumeClaim) -> str | None:
    annotations = annotations_of(claim)
    return annotations.get(STORAGE_PROVISIONER, annotations.get(BETA_STORAGE_PROVISIONER))


def _topology_allows(storage_class: StorageClass, node: str) -> bool:
    topologies = storage_class.get("allowedTopologies") or []
    hostnames = [value for term in topologies
                 for expr in term.get("matchLabelExpressions") or []
                 if expr.get("key") == HOSTNAME for value in expr.get("values") or []]
    return not hostnames or node in hostnames


def wants_provisioning(claim: PersistentVolumeClaim, storage_class: StorageClass | None, *,
                       node: str) -> bool:
    """Whether this node's provisioner should provision the claim now."""
    if (claim.get("spec") or {}).get("volumeName") or is_being_deleted(claim):
        return False
    if _requested_provisioner(claim) != PROVISIONER:
        return False
    if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
        return False
    selected = annotations_of(claim).get(SELECTED_NODE, "")
    if storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
        return selected == node
    return selected == node if selected else _topology_allows(storage_class, node)


def check_provisionable(claim: PersistentVolumeClaim) -> None:
    """Raise `Unprovisionable` for what no Docker volume can be (as `canProvision`), and for
    a claim with a `selector`: a new volume carries no labels to match it, so provisioners
    refuse it (as the CSI external-provisioner and local-path do)."""
    spec = claim.get("spec") or {}
    if spec.get("volumeMode") == "Block":
        raise Unprovisionable(f"{PROVISIONER} does not support block volume provisioning")
    if spec.get("selector") is not None:
        raise Unprovisionable(f'failed to provision volume with StorageClass '
                              f'"{claim_class(claim)}": claim Selector is not supported')


def claim_ref(claim: PersistentVolumeClaim) -> ObjectReference:
    md = meta_of(claim)
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": md.get("namespace") or "default", "name": md["name"],
            "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", "")}


def node_affinity(node: str) -> dict[str, NodeSelector]:
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": HOSTNAME, "operator": "In", "values": [node]}]}]}}


def build_pv(claim: PersistentVolumeClaim, storage_class: StorageClass, *, node: str,
             volume: str) -> PersistentVolume:
    """The PV for `claim`, backed by the Docker volume named `volume` on `node`."""
    spec = claim.get("spec") or {}
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
    pv: PersistentVolume = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": str(request)},
            "accessModes": list(spec.get("accessModes") or []),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(claim),
            "claimRef": claim_ref(claim),
            "csi": {"driver": PROVISIONER, "volumeHandle": volume},
            "nodeAffinity": node_affinity(node),
        },
    }
    if storage_class.get("mountOptions"):
        pv["spec"]["mountOptions"] = list(storage_class["mountOptions"])
    return pv


def docker_volume_of(pv: PersistentVolume) -> str | None:
    """The Docker volume behind a PV of this provisioner's CSI driver, or None."""
    csi = (pv.get("spec") or {}).get("csi") or {}
    return csi.get("volumeHandle") or None if csi.get("driver") == PROVISIONER else None


def pv_node(pv: PersistentVolume) -> str | None:
    """The one hostname a PV's node affinity requires, if it requires exactly one."""
    affinity = (pv.get("spec") or {}).get("nodeAffinity") or {}
    required = affinity.get("required")
    terms = required.get("nodeSelectorTerms") or [] if required else []
    values = {value for term in terms for expr in term.get("matchExpressions") or []
              if expr.get("key") == HOSTNAME and expr.get("operator") == "In"
              for value in expr.get("values") or []}
    return values.pop() if len(values) == 1 else None


def should_delete(pv: PersistentVolume, *, node: str) -> bool:
    """Whether this node's deleter removes the PV and its Docker volume now."""
    return (annotations_of(pv).get(PROVISIONED_BY) == PROVISIONER
            and not is_being_deleted(pv)
            and (pv.get("status") or {}).get("phase") == "Released"
            and (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete"
            and docker_volume_of(pv) is not None and pv_node(pv) == node)


def owns_volume(pv: PersistentVolume, volume_labels_: dict[str, str], *, instance: str) -> bool:
    """A Docker volume is this PV's, made by this instance: the deleter removes no other."""
    return (volume_labels_.get(labels.INSTANCE) == instance
            and volume_labels_.get(PV_LABEL) == name_of(pv))
