"""The ServiceAccount admission plugin: a pod runs as an account, with its token mounted.

As Kubernetes' `plugin/pkg/admission/serviceaccount`, on a pod's create
(never on its updates, and not for mirror pods):

- `spec.serviceAccountName` defaults to `default` (and the deprecated
  `spec.serviceAccount` follows it); an account that does not exist
  refuses the pod with 403, in Kubernetes' words. The `default` account is
  looked up 10 times, 100-200 ms apart, before that, as upstream does: the
  ServiceAccount controller makes it just after a namespace appears, and a
  pod created at once should not be refused;
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

import asyncio
import random
from typing import Any

from minik.api import errors, meta
from minik.api.resources import SERVICEACCOUNTS
from minik.store import Record, Store

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


DEFAULT_ACCOUNT_ATTEMPTS = 10


class ServiceAccountAdmission:
    """Defaults the pod's account, refuses a missing one, mounts its token."""

    def __init__(self, *, retry_interval: tuple[float, float] = (0.1, 0.2)) -> None:
        self.retry_interval = retry_interval

    async def _account(self, store: Store, namespace: str, name: str) -> Record | None:
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        interval = random.uniform(*self.retry_interval)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(interval)
            record = await store.get(SERVICEACCOUNTS.key(namespace, name))
            if record is not None:
                return record
        return None

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
        record = await self._account(store, namespace, name)
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
