"""The ephemeral volume controller: a claim for each generic ephemeral volume of a pod.

Kubernetes' `ephemeral-volume` controller (`pkg/controller/volume/ephemeral`).
A pod volume `ephemeral.volumeClaimTemplate` stands for a claim named
`<pod>-<volume>` made from the template (its labels, annotations and
spec), owned by the pod (a controller reference with
`blockOwnerDeletion`), so that the garbage collector removes the claim with
the pod. The scheduler waits for the claim like for any other
(`minik.scheduler.volumes`) and refuses a claim of that name that the pod
does not own.

Handlers only compute keys: a pod with an ephemeral volume, not being
deleted, is queued when it is added or changes; a deleted claim queues the
pods whose ephemeral volume it was (an index on the claim names), so that
a claim removed under a live pod comes back. `sync(pod)` creates each
claim the cache does not hold; a claim already there (the cache lagged)
is left as it is - the scheduler reports one the pod does not own - and a
failed create is reported on the pod and retried with the queue's back-off.
"""

from __future__ import annotations

import logging

from minik.api.ephemeral import volume_claim_name
from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, meta_of, name_of, namespace_of, new_controller_ref
from minik.api.objects import JsonObject, PersistentVolumeClaim, Pod
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PODS
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer, key_of
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

CLAIM_INDEX = "ephemeralClaims"
DEFAULT_WORKERS = 1


def ephemeral_volumes(pod: Pod) -> list[JsonObject]:
    return [v for v in (pod.get("spec") or {}).get("volumes") or []
            if v.get("ephemeral") is not None]


def ephemeral_claim_keys(pod: Pod) -> list[str]:
    """`namespace/claim` of each of the pod's ephemeral claims: an informer index."""
    return [f"{namespace_of(pod)}/{volume_claim_name(pod, v)}" for v in ephemeral_volumes(pod)]


def claim_for(pod: Pod, volume: JsonObject) -> JsonObject:
    """The claim an ephemeral volume stands for, owned by the pod."""
    template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate") or {}
    template_md = template.get("metadata") or {}
    metadata: JsonObject = {
        "name": volume_claim_name(pod, volume), "namespace": namespace_of(pod),
        "ownerReferences": [new_controller_ref(pod, api_version="v1", kind="Pod")],
    }
    for field in ("labels", "annotations"):
        if template_md.get(field):
            metadata[field] = dict(template_md[field])
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata,
            "spec": dict(template.get("spec") or {})}


class EphemeralVolumeController:
    """Creates the claims of pods' generic ephemeral volumes."""

    name = "ephemeral-volume"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.events = ctx.events
        self.metrics = ctx.metrics
        self.workers = workers
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.claims = ctx.informers.get(PERSISTENTVOLUMECLAIMS)
        self.pods.add_index(CLAIM_INDEX, ephemeral_claim_keys)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.pods.add_handler(self._pod_changed, lambda _old, new: self._pod_changed(new))
        self.claims.add_handler(on_delete=self._claim_deleted)

    async def run(self) -> None:
        await self.informers.wait_synced(PODS, PERSISTENTVOLUMECLAIMS)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    def _pod_changed(self, pod: Pod) -> None:
        if not is_being_deleted(pod) and ephemeral_volumes(pod):
            self.queue.add(key_of(pod))

    def _claim_deleted(self, claim: PersistentVolumeClaim) -> None:
        for key in self.pods.indexer.index_keys(CLAIM_INDEX, key_of(claim)):
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        """Create every ephemeral claim of the pod `key` that does not exist."""
        pod = self.pods.indexer.get(key)
        if pod is None or is_being_deleted(pod):
            return
        namespace = namespace_of(pod)
        for volume in ephemeral_volumes(pod):
            if self.claims.indexer.get_by(namespace, volume_claim_name(pod, volume)) is None:
                await self._create(pod, volume)

    async def _create(self, pod: Pod, volume: JsonObject) -> None:
        claim = claim_for(pod, volume)
        try:
            await self.client.create(PERSISTENTVOLUMECLAIMS, namespace_of(pod), claim)
        except ApiError as e:
            if e.code == 409:
                return
            self.events.record(pod, "Warning", "FailedBinding", f"PVC creation failed: {e}")
            raise
        log.info("%s: created claim %s/%s for pod %s", self.name, namespace_of(pod),
                 meta_of(claim)["name"], name_of(pod))
