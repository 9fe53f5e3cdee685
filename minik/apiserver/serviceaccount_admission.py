"""The ServiceAccount admission plugin: a pod runs as an account, with its token mounted.

As Kubernetes' `plugin/pkg/admission/serviceaccount`, on a pod's create
(never on its updates, and not for mirror pods):

- `spec.serviceAccountName` defaults to `default` (and the deprecated
  `spec.serviceAccount` follows it); an account that does not exist
  refuses the pod with 403, in Kubernetes' words;
- unless `automountServiceAccountToken` is false on the pod or, when the
  pod does not say, on the account, the pod gets the projected volume
  `kube-api-access-<5 random>`: a bound token (3607 seconds, which the
  node agent requests and rotates), `ca.crt` from the `kube-root-ca.crt`
  ConfigMap and the namespace from the downward API; each container and
  init container that does not already mount something at
  `/var/run/secrets/kubernetes.io/serviceaccount` mounts it there,
  read-only. A pod that already has a `kube-api-access-*` volume (a
  manifest copied from a running pod) gets that one mounted instead, as
  upstream does.
"""

from __future__ import annotations

from typing import Any

from minik.api import errors, meta
from minik.api.resources import SERVICEACCOUNTS
from minik.store import Store

JsonObject = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607
"""The kubelet's token lifetime: an hour and seven seconds, as Kubernetes asks."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def api_access_volume(name: str) -> JsonObject:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt",
                                                               "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def _mounts_token_path(container: JsonObject) -> bool:
    return any(m.get("mountPath") == MOUNT_PATH for m in container.get("volumeMounts") or [])


class ServiceAccountAdmission:
    """Defaults the pod's account, refuses a missing one, mounts its token."""

    async def admit(self, store: Store, old: JsonObject | None, new: JsonObject, *,
                    dry_run: bool = False) -> None:
        md = meta.metadata(new)
        if old is not None or MIRROR_ANNOTATION in (md.get("annotations") or {}):
            return
        spec = new.setdefault("spec", {})
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or \
            DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        namespace = md.get("namespace") or ""
        record = await store.get(SERVICEACCOUNTS.key(namespace, name))
        if record is None:
            raise errors.forbidden(
                f'pods "{md.get("name", "")}" is forbidden: error looking up service account '
                f'{namespace}/{name}: serviceaccount "{name}" not found')
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = record.value.get("automountServiceAccountToken")
        if automount is False:
            return
        containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        if all(_mounts_token_path(c) for c in containers):
            return
        volumes = spec.setdefault("volumes", [])
        existing = [v.get("name") for v in volumes
                    if str(v.get("name") or "").startswith(VOLUME_PREFIX)]
        if existing:
            volume_name = str(existing[0])
        else:
            taken = {v.get("name") for v in volumes}
            volume_name = meta.generated_name(VOLUME_PREFIX)
            while volume_name in taken:
                volume_name = meta.generated_name(VOLUME_PREFIX)
            volumes.append(api_access_volume(volume_name))
        for container in containers:
            if not _mounts_token_path(container):
                container.setdefault("volumeMounts", []).append(
                    {"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH})
