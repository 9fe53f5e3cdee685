"""Generic ephemeral volumes: the claim a pod's `ephemeral` volume stands for.

Kubernetes' `k8s.io/component-helpers/storage/ephemeral`, shared by the
ephemeral volume controller that creates the claim, the scheduler that
waits for it and the node that mounts it: the claim is named
`<pod>-<volume>` and belongs to the pod only if the pod is its controller.
"""

from __future__ import annotations

from minik.api.meta import controller_of, name_of, namespace_of, uid_of
from minik.api.objects import JsonObject, PersistentVolumeClaim, Pod


def volume_claim_name(pod: Pod, volume: JsonObject) -> str:
    """`<pod>-<volume>`: the claim of the pod's ephemeral volume."""
    return f"{name_of(pod)}-{volume.get('name', '')}"


def volume_is_for_pod(pod: Pod, claim: PersistentVolumeClaim) -> str | None:
    """None when the pod owns the claim; otherwise Kubernetes' error text."""
    owner = controller_of(claim)
    if owner is not None and owner.get("uid") == uid_of(pod):
        return None
    return (f"PVC {namespace_of(claim)}/{name_of(claim)} was not created for pod "
            f"{namespace_of(pod)}/{name_of(pod)} (pod is not owner)")
