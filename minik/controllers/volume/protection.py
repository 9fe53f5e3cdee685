"""The pvc-protection and pv-protection controllers: storage in use is not removed.

Kubernetes' `pkg/controller/volume/pvcprotection` and `pvprotection`. The
API server puts `kubernetes.io/pvc-protection` on every new claim and
`kubernetes.io/pv-protection` on every new volume; these controllers add it
to any that lacks it, and remove it once the object is being deleted and no
longer in use, which lets the deletion finish:

- a claim is in use while a pod that is scheduled (has a node) and not shut
  down (deleted with no grace left, or force-deleted) names it among its
  volumes, as Kubernetes' `podUsesPVC` says: a finished pod that still
  exists keeps the claim, as in Kubernetes. The informer's answer "unused" is
  confirmed by a live list of the namespace's pods, so a pod just created
  and not yet in the cache still counts.
- a volume is in use while it is Bound.

Handlers only compute keys: a claim's or volume's change queues it, and a
pod's change queues every claim the pod names.
"""

from __future__ import annotations

import copy
import logging

from minik.api.errors import ApiError
from minik.api.meta import finalizers_of, is_being_deleted, meta_of, name_of, namespace_of
from minik.api.objects import PersistentVolume, PersistentVolumeClaim, Pod
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from minik.api.volumes import PV_PROTECTION, PVC_PROTECTION, claims_of
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer, key_of, split_key
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)


def claims_named_by(pod: Pod) -> list[str]:
    """The claims of the pod's `persistentVolumeClaim` and `ephemeral` volumes."""
    return [claim.name for claim in claims_of(pod)]


def is_shut_down(pod: Pod) -> bool:
    """`podIsShutDown`: deleted with no grace period left; the kubelet is done with it."""
    md = meta_of(pod)
    return bool(md.get("deletionTimestamp")) and md.get("deletionGracePeriodSeconds") == 0


def pod_uses_claim(pod: Pod, claim_name: str) -> bool:
    """`podUsesPVC`: only a scheduled pod that is not shut down uses a claim."""
    if not (pod.get("spec") or {}).get("nodeName") or is_shut_down(pod):
        return False
    return claim_name in claims_named_by(pod)


def _with_finalizer(obj: PersistentVolumeClaim | PersistentVolume,
                    finalizer: str, *, present: bool) -> dict[str, object]:
    changed: dict[str, object] = copy.deepcopy(dict(obj))
    md = dict(meta_of(obj))
    others = [f for f in finalizers_of(obj) if f != finalizer]
    md["finalizers"] = [*others, finalizer] if present else others
    changed["metadata"] = md
    return changed


class PVCProtectionController:
    """Holds a claim's deletion while a pod uses it."""

    name = "pvc-protection"

    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.metrics = ctx.metrics
        self.informers = ctx.informers
        self.claims: Informer[PersistentVolumeClaim] = ctx.informers.get(PERSISTENTVOLUMECLAIMS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.claims.add_handler(self._claim_changed, lambda _o, new: self._claim_changed(new))
        self.pods.add_handler(self._pod_changed, lambda _o, new: self._pod_changed(new),
                              self._pod_changed)

    async def run(self) -> None:
        await self.informers.wait_synced(PERSISTENTVOLUMECLAIMS, PODS)
        await run_workers(self.queue, self.sync, metrics=self.metrics)

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        held = PVC_PROTECTION in finalizers_of(claim)
        if held == is_being_deleted(claim):
            self.queue.add(key_of(claim))

    def _pod_changed(self, pod: Pod) -> None:
        for claim in claims_named_by(pod):
            self.queue.add(f"{namespace_of(pod)}/{claim}")

    async def sync(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        held = PVC_PROTECTION in finalizers_of(claim)
        if not is_being_deleted(claim):
            if not held:
                await self._write(claim, present=True)
            return
        if held and not await self._in_use(claim):
            await self._write(claim, present=False)
            log.info("%s: claim %s is no longer used by any pod", self.name, key)

    async def _in_use(self, claim: PersistentVolumeClaim) -> bool:
        namespace, name = split_key(key_of(claim))
        if any(pod_uses_claim(p, name) for p in self.pods.indexer.list(namespace)):
            return True
        pods = await self.client.list(PODS, namespace)
        return any(pod_uses_claim(p, name) for p in pods.get("items") or [])

    async def _write(self, claim: PersistentVolumeClaim, *, present: bool) -> None:
        try:
            await self.client.replace(PERSISTENTVOLUMECLAIMS, namespace_of(claim),
                                      name_of(claim),
                                      _with_finalizer(claim, PVC_PROTECTION, present=present))
        except ApiError as e:
            if e.code != 404:
                raise


class PVProtectionController:
    """Holds a volume's deletion while it is Bound."""

    name = "pv-protection"

    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.metrics = ctx.metrics
        self.informers = ctx.informers
        self.volumes: Informer[PersistentVolume] = ctx.informers.get(PERSISTENTVOLUMES)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.volumes.add_handler(self._volume_changed, lambda _o, new: self._volume_changed(new))

    async def run(self) -> None:
        await self.informers.wait_synced(PERSISTENTVOLUMES)
        await run_workers(self.queue, self.sync, metrics=self.metrics)

    def _volume_changed(self, volume: PersistentVolume) -> None:
        held = PV_PROTECTION in finalizers_of(volume)
        if held == is_being_deleted(volume):
            self.queue.add(name_of(volume))

    async def sync(self, name: str) -> None:
        volume = self.volumes.indexer.get(name)
        if volume is None:
            return
        held = PV_PROTECTION in finalizers_of(volume)
        if not is_being_deleted(volume):
            present = True
        elif held and (volume.get("status") or {}).get("phase") != "Bound":
            present = False
        else:
            return
        if held == present:
            return
        try:
            await self.client.replace(PERSISTENTVOLUMES, None, name,
                                      _with_finalizer(volume, PV_PROTECTION, present=present))
        except ApiError as e:
            if e.code != 404:
                raise
