"""The PersistentVolume controller (Kubernetes' `persistentvolume-binder`).

Two work queues, as in `pkg/controller/volume/persistentvolume`: claims
(`namespace/name`) and volumes (`name`). Handlers only compute keys: a claim
change queues the claim (and, when it is deleted, the volume it was bound
to); a volume change queues the volume and the claim it names; a volume
that is free, or a StorageClass that changes, queues every claim still
waiting, so a claim binds as soon as something can serve it.

`sync_claim` is level-triggered. A claim not yet `bind-completed`:
- without `volumeName`, it binds to the best matching volume (`matching`);
  with none, an unset class gets the default one (retroactively, as
  Kubernetes does); with WaitForFirstConsumer and no node chosen yet it waits
  (event WaitForFirstConsumer, or WaitForPodScheduled naming its pods); a
  class asks its provisioner (every provisioner is external here: the
  claim's `storage-provisioner` annotations name it, event
  ExternalProvisioning; a `kubernetes.io/` one no plugin serves, event
  ProvisioningFailed); without a class, event FailedBinding. It stays
  Pending.
- with `volumeName` (pre-bound by the user, or by the scheduler or a
  provisioner through the volume's `claimRef`), it binds to that volume if it
  is free and fits, else stays Pending with an event saying why.
A bound claim stays Bound while its volume points back at it, is Lost when
the volume has gone, and grows: a request raised on an expandable class
resizes a minik Docker volume (which has no size: the new capacity is
recorded, not enforced) and the claim's `status.capacity`.

`sync_volume`: a volume with no claim is Available; one whose claim has gone
is Released and reclaimed (`reclaim`); one whose claim is bound elsewhere is
unbound (or released, if it was provisioned for it).
"""

from __future__ import annotations

import logging

from minik.api.errors import ApiError
from minik.api.meta import annotations_of, meta_of, name_of, namespace_of
from minik.api.objects import (
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    StorageClass,
)
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, STORAGECLASSES
from minik.api.volumematching import find_best_match, volume_mismatch
from minik.api.volumes import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    claim_class,
    claim_class_or_none,
    claims_of,
    newest_default_class,
)
from minik.controllers.context import ControllerContext
from minik.controllers.volume.expansion import Expansion, expand
from minik.controllers.volume.reclaim import reclaim
from minik.controllers.volume.writes import BindingWrites
from minik.machinery.informer import Informer, key_of
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
WAIT_FIRST_CONSUMER = "waiting for first consumer to be created before binding"
EXTERNAL_PROVISIONING = (
    "Waiting for a volume to be created either by the external provisioner '{}' or manually "
    "by the system administrator. If volume creation is delayed, please verify that the "
    "provisioner is running and correctly registered.")


def users_of(claim: PersistentVolumeClaim, pods: list[Pod]) -> list[Pod]:
    """The pods whose volumes name the claim."""
    name = name_of(claim)
    return [p for p in pods if any(c.name == name for c in claims_of(p))]


class PersistentVolumeController:
    """Binds claims to volumes and keeps both phases true."""

    name = "persistentvolume-binder"

    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.events = ctx.events
        self.metrics = ctx.metrics
        self.informers = ctx.informers
        self.writes = BindingWrites(ctx.client)
        self.claims: Informer[PersistentVolumeClaim] = ctx.informers.get(PERSISTENTVOLUMECLAIMS)
        self.volumes: Informer[PersistentVolume] = ctx.informers.get(PERSISTENTVOLUMES)
        self.classes: Informer[StorageClass] = ctx.informers.get(STORAGECLASSES)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.expansion = Expansion(ctx.client, self.writes, ctx.events, self.classes)
        self.claim_queue = WorkQueue("persistentvolume-claims", metrics=ctx.metrics,
                                     clock=ctx.clock)
        self.volume_queue = WorkQueue("persistentvolume-volumes", metrics=ctx.metrics,
                                      clock=ctx.clock)
        self.claims.add_handler(self._claim_changed, lambda _o, new: self._claim_changed(new),
                                self._claim_deleted)
        self.volumes.add_handler(self._volume_changed, lambda _o, new: self._volume_changed(new),
                                 self._volume_changed)
        self.classes.add_handler(self._class_changed, lambda _o, new: self._class_changed(new),
                                 self._class_changed)

    async def run(self) -> None:
        await self.informers.wait_synced(PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES,
                                         STORAGECLASSES, PODS)
        for volume in self.volumes.indexer.list():
            self.volume_queue.add(name_of(volume))
        for claim in self.claims.indexer.list():
            self.claim_queue.add(key_of(claim))
        volumes = run_workers(self.volume_queue, self.sync_volume, metrics=self.metrics)
        await run_workers(self.claim_queue, self.sync_claim, metrics=self.metrics,
                          also=[volumes])

    # ------------------------------------------------------------------ handlers

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        self.claim_queue.add(key_of(claim))

    def _claim_deleted(self, claim: PersistentVolumeClaim) -> None:
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            self.volume_queue.add(str(volume))
        for bound in self.volumes.indexer.list():
            ref = (bound.get("spec") or {}).get("claimRef") or {}
            if ref.get("uid") and ref.get("uid") == meta_of(claim).get("uid"):
                self.volume_queue.add(name_of(bound))

    def _volume_changed(self, volume: PersistentVolume) -> None:
        self.volume_queue.add(name_of(volume))
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.claim_queue.add(f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        else:
            self._waiting_claims()

    def _class_changed(self, _storage_class: StorageClass) -> None:
        self._waiting_claims()

    def _waiting_claims(self) -> None:
        for claim in self.claims.indexer.list():
            if BIND_COMPLETED not in annotations_of(claim):
                self.claim_queue.add(key_of(claim))

    # ------------------------------------------------------------------ claims

    async def sync_claim(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        if BIND_COMPLETED in annotations_of(claim):
            await self._sync_bound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    def _delay_binding(self, claim: PersistentVolumeClaim) -> bool:
        """`IsDelayBindingMode`: the claim's class binds WaitForFirstConsumer."""
        storage_class = self.classes.indexer.get(claim_class(claim))
        return (storage_class is not None
                and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer")

    async def _sync_unbound_claim(self, claim: PersistentVolumeClaim) -> None:
        wanted = (claim.get("spec") or {}).get("volumeName")
        if wanted:
            await self._sync_prebound_claim(claim, wanted)
            return
        delay = self._delay_binding(claim)
        volume = find_best_match(claim, self.volumes.indexer.list(), delay_binding=delay)
        if volume is not None:
            await self._bind(volume, claim)
            return
        if await self._assign_default_class(claim):
            return
        if delay and SELECTED_NODE not in annotations_of(claim):
            self._wait_for_first_consumer(claim)
        elif claim_class(claim):
            await self._provision(claim)
            return
        else:
            self.events.record(claim, "Normal", "FailedBinding", NO_CLASS)
        await self.writes.set_claim_status(claim, "Pending", None)

    async def _sync_prebound_claim(self, claim: PersistentVolumeClaim, wanted: str) -> None:
        volume = self.volumes.indexer.get(wanted)
        if volume is None:
            await self.writes.set_claim_status(claim, "Pending", None)
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref:
            why = volume_mismatch(volume, claim)
            if why is None:
                await self._bind(volume, claim)
                return
            self.events.record(claim, "Warning", "VolumeMismatch",
                               f'Cannot bind to requested volume "{wanted}": {why}')
        elif ref.get("name") == name_of(claim) and ref.get("namespace") == namespace_of(
                claim) and ref.get("uid") in (None, "", meta_of(claim).get("uid")):
            await self._bind(volume, claim)
            return
        else:
            self.events.record(claim, "Warning", "FailedBinding",
                               f'volume "{wanted}" already bound to a different claim.')
        await self.writes.set_claim_status(claim, "Pending", None)

    async def _sync_bound_claim(self, claim: PersistentVolumeClaim) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        volume = self.volumes.indexer.get(name) if name else None
        if volume is None:
            lost = ("Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                    if name else
                    "Bound claim has lost reference to PersistentVolume. Data on the volume "
                    "is lost!")
            if (claim.get("status") or {}).get("phase") != "Lost":
                self.events.record(claim, "Warning", "ClaimLost", lost)
            await self.writes.set_claim_status(claim, "Lost", None)
            return
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if not ref or ref.get("uid") == meta_of(claim).get("uid"):
            claim = await self._bind(volume, claim)
            await expand(self.expansion, claim, self.volumes.indexer.get(name or "") or volume)
            return
        if (claim.get("status") or {}).get("phase") != "Lost":
            self.events.record(claim, "Warning", "ClaimMisbound",
                               "Two claims are bound to the same volume, this one is bound "
                               "incorrectly")
        await self.writes.set_claim_status(claim, "Lost", None)

    async def _bind(self, volume: PersistentVolume,
                    claim: PersistentVolumeClaim) -> PersistentVolumeClaim:
        volume = await self.writes.bind_volume_to_claim(volume, claim)
        volume = await self.writes.set_volume_phase(volume, "Bound")
        claim = await self.writes.bind_claim_to_volume(claim, volume)
        claim = await self.writes.set_claim_status(claim, "Bound", volume)
        return claim

    async def _assign_default_class(self, claim: PersistentVolumeClaim) -> bool:
        """Retroactive default StorageClass assignment: a claim with no class at all gets
        the default one once there is one."""
        if claim_class_or_none(claim) is not None:
            return False
        default = newest_default_class(self.classes.indexer.list())
        if default is None:
            return False
        changed = {**claim, "spec": {**(claim.get("spec") or {}),
                                     "storageClassName": name_of(default)}}
        await self.client.replace(PERSISTENTVOLUMECLAIMS, namespace_of(claim), name_of(claim),
                                  changed)
        return True

    def _wait_for_first_consumer(self, claim: PersistentVolumeClaim) -> None:
        """`emitEventForUnboundDelayBindingClaim`: which unscheduled pods it waits for."""
        waiting = sorted(name_of(p) for p in users_of(
            claim, self.pods.indexer.list(namespace_of(claim)))
            if not (p.get("spec") or {}).get("nodeName"))
        if not waiting:
            self.events.record(claim, "Normal", "WaitForFirstConsumer", WAIT_FIRST_CONSUMER)
            return
        message = (f"waiting for pods {','.join(waiting)} to be scheduled" if len(waiting) > 1
                   else f"waiting for pod {waiting[0]} to be scheduled")
        self.events.record(claim, "Normal", "WaitForPodScheduled", message)

    async def _provision(self, claim: PersistentVolumeClaim) -> None:
        """`provisionClaimOperation`: an external provisioner is asked through the claim's
        annotations; a `kubernetes.io/` provisioner has no plugin here."""
        name = claim_class(claim)
        storage_class = self.classes.indexer.get(name)
        if storage_class is None:
            self.events.record(claim, "Warning", "ProvisioningFailed",
                               f'storageclass.storage.k8s.io "{name}" not found')
            return
        provisioner = storage_class.get("provisioner", "")
        if provisioner.startswith("kubernetes.io/"):
            self.events.record(claim, "Warning", "ProvisioningFailed",
                               f"no volume plugin matched name: {provisioner}")
            return
        annotations = annotations_of(claim)
        if (annotations.get(STORAGE_PROVISIONER), annotations.get(BETA_STORAGE_PROVISIONER)) != (
                provisioner, provisioner):
            patch = {"metadata": {"annotations": {STORAGE_PROVISIONER: provisioner,
                                                  BETA_STORAGE_PROVISIONER: provisioner}}}
            claim = await self.client.patch(PERSISTENTVOLUMECLAIMS, namespace_of(claim),
                                            name_of(claim), patch)
        self.events.record(claim, "Normal", "ExternalProvisioning",
                           EXTERNAL_PROVISIONING.format(provisioner))

    # ------------------------------------------------------------------ volumes

    async def sync_volume(self, name: str) -> None:
        volume = self.volumes.indexer.get(name)
        if volume is None:
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            await self.writes.set_volume_phase(volume, "Available")
            return
        claim = await self._claim_of(volume)
        if claim is None:
            if (volume.get("status") or {}).get("phase") not in ("Released", "Failed"):
                volume = await self.writes.set_volume_phase(volume, "Released")
            await reclaim(self.writes, self.events, volume)
            return
        bound_to = (claim.get("spec") or {}).get("volumeName")
        if not bound_to:
            self.claim_queue.add(key_of(claim))
        elif bound_to == name:
            await self.writes.set_volume_phase(volume, "Bound")
        elif PROVISIONED_BY in annotations_of(volume) and (volume.get("spec") or {}).get(
                "persistentVolumeReclaimPolicy") == "Delete":
            if (volume.get("status") or {}).get("phase") not in ("Released", "Failed"):
                volume = await self.writes.set_volume_phase(volume, "Released")
            await reclaim(self.writes, self.events, volume)
        else:
            await self.writes.unbind_volume(volume)

    async def _claim_of(self, volume: PersistentVolume) -> PersistentVolumeClaim | None:
        """The claim the volume's claimRef names, if it is still that claim (same uid).

        Not in the cache is confirmed with the API server before the volume is released:
        a claim just created may not have reached the cache yet.
        """
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        namespace, name = ref.get("namespace", ""), ref.get("name", "")
        claim = self.claims.indexer.get_by(namespace, name)
        if claim is None and (volume.get("status") or {}).get("phase") not in (
                "Released", "Failed"):
            try:
                claim = await self.client.get(PERSISTENTVOLUMECLAIMS, namespace, name)
            except ApiError as e:
                if e.code != 404:
                    raise
        if claim is not None and meta_of(claim).get("uid") != ref.get("uid"):
            return None
        return claim

