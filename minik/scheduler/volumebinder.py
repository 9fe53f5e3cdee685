"""The scheduler's volume binder: its claim, volume and class caches, and PreBind.

kube-scheduler's `SchedulerVolumeBinder`. Informers cache claims, PVs and
StorageClasses (the `VolumeCache` the pure rules of `volumes` read); a
change to a claim tells the scheduler which claim changed (the pods that
use it and are waiting are retried), a change to a PV or a class that any
pod with claims might be waiting for it. Nothing polls.

Once a pod is placed, `bind` does VolumeBinding's PreBind for the plan
found on its node: it pre-binds each chosen static PV to its claim
(`spec.claimRef` with the claim's uid, annotation
`pv.kubernetes.io/bound-by-controller`; the PV controller completes the
binding, as it does for Kubernetes' scheduler) and sets
`volume.kubernetes.io/selected-node` on each claim to provision (the
provisioner of the claim's class creates the PV there). Then it waits,
woken by the informers, until every claim is bound to a PV that fits the
node - at most `bind_timeout` (kube-scheduler's `bindTimeoutSeconds`,
600 s) - and only then is the pod bound to the node. A claim deleted, a
`selected-node` taken back by a provisioner that could not provision, a
PV's claimRef reset, or the time running out fail the binding: the
scheduler reports it and tries the pod again from the start.

PVs chosen for a pod are "assumed" until its binding ends, so that two
pods placed one after the other never pick the same PV.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from minik.api.errors import ApiError
from minik.api.meta import annotations_of, name_of, namespace_of, resource_version_of, uid_of
from minik.api.objects import (
    JsonObject,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    StorageClass,
)
from minik.api.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
    ResourceType,
)
from minik.api.volumes import BOUND_BY_CONTROLLER, SELECTED_NODE
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock
from minik.machinery.informer import Informer, key_of
from minik.scheduler.volumes import VolumePlan, is_claim_bound, volume_fits_node

BIND_TIMEOUT = 600.0


class VolumeBindingError(Exception):
    """The pod's volumes could not be bound on its node; it is to be scheduled again."""


class VolumeBinder:
    """Claims, PVs and classes as the scheduler sees them, and the binding of a pod's claims."""

    def __init__(
        self, client: AsyncClient, *, clock: Clock, resync_period: float,
        on_claim: Callable[[str], None], on_volume: Callable[[], None],
        bind_timeout: float = BIND_TIMEOUT,
    ) -> None:
        self.client = client
        self.clock = clock
        self.bind_timeout = bind_timeout
        self.claims: Informer[PersistentVolumeClaim] = Informer(
            client, PERSISTENTVOLUMECLAIMS, resync_period=resync_period, clock=clock)
        self.pvs: Informer[PersistentVolume] = Informer(
            client, PERSISTENTVOLUMES, resync_period=resync_period, clock=clock)
        self.classes: Informer[StorageClass] = Informer(
            client, STORAGECLASSES, resync_period=resync_period, clock=clock)
        self._on_claim = on_claim
        self._on_volume = on_volume
        self._assumed: dict[str, VolumePlan] = {}
        self._waiters: set[asyncio.Event] = set()
        self.claims.add_handler(self._claim_changed, lambda _, new: self._claim_changed(new),
                                self._claim_changed)
        self.pvs.add_handler(self._volume_changed, lambda _, new: self._volume_changed(new),
                             self._volume_changed)
        self.classes.add_handler(self._volume_changed, lambda _, new: self._volume_changed(new))

    @property
    def waiting(self) -> int:
        """How many pods wait for their claims to be bound."""
        return len(self._waiters)

    @property
    def informers(self) -> tuple[Informer[PersistentVolumeClaim], Informer[PersistentVolume],
                                 Informer[StorageClass]]:
        return self.claims, self.pvs, self.classes

    # ------------------------------------------------------------- VolumeCache

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None:
        return self.claims.indexer.get(f"{namespace}/{name}")

    def volume(self, name: str) -> PersistentVolume | None:
        return self.pvs.indexer.get(name)

    def volumes(self) -> list[PersistentVolume]:
        return self.pvs.indexer.list()

    def storage_class(self, name: str) -> StorageClass | None:
        return self.classes.indexer.get(name)

    # ------------------------------------------------------------- events

    def _wake(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        self._wake()
        self._on_claim(key_of(claim))

    def _volume_changed(self, _: PersistentVolume | StorageClass) -> None:
        self._wake()
        self._on_volume()

    # ------------------------------------------------------------- assume

    def taken(self, pod_key: str) -> set[str]:
        """PVs chosen for other pods whose binding is under way."""
        return {name_of(volume) for key, plan in self._assumed.items() if key != pod_key
                for volume, _ in plan.static}

    def assume(self, pod_key: str, plan: VolumePlan) -> None:
        if not plan.empty:
            self._assumed[pod_key] = plan

    def forget(self, pod_key: str) -> None:
        self._assumed.pop(pod_key, None)
        self._wake()

    # ------------------------------------------------------------- PreBind

    async def bind(self, pod: Pod, node: Node, plan: VolumePlan) -> None:
        """Write the plan's bindings and wait until every claim in it is bound; raises
        `VolumeBindingError` when that fails or takes longer than `bind_timeout`."""
        key = key_of(pod)
        try:
            for volume, claim in plan.static:
                await self._prebind(volume, claim)
            for claim in plan.provision:
                await self._select_node(claim, name_of(node))
            await self._wait_bound(key, node, plan)
        finally:
            self._assumed.pop(key, None)

    async def _prebind(self, volume: PersistentVolume, claim: PersistentVolumeClaim) -> None:
        ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
               "namespace": namespace_of(claim), "name": name_of(claim), "uid": uid_of(claim),
               "resourceVersion": resource_version_of(claim)}
        patch = {"metadata": {"resourceVersion": resource_version_of(volume),
                              "annotations": {BOUND_BY_CONTROLLER: "yes"}},
                 "spec": {"claimRef": ref}}
        await self._write(PERSISTENTVOLUMES, None, name_of(volume), patch)

    async def _select_node(self, claim: PersistentVolumeClaim, node: str) -> None:
        if annotations_of(claim).get(SELECTED_NODE) == node:
            return
        # Only the annotation, with no resourceVersion: the claim's other writers (the
        # StatefulSet controller re-owning it, the binder) must not make this a conflict.
        patch = {"metadata": {"annotations": {SELECTED_NODE: node}}}
        await self._write(PERSISTENTVOLUMECLAIMS, namespace_of(claim), name_of(claim), patch)

    async def _write(self, rt: ResourceType, namespace: str | None, name: str,
                     patch: JsonObject) -> None:
        try:
            await self.client.patch(rt, namespace, name, patch)
        except ApiError as e:
            raise VolumeBindingError(f"binding volumes: {e}") from e

    async def _wait_bound(self, key: str, node: Node, plan: VolumePlan) -> None:
        deadline = self.clock.now() + self.bind_timeout
        changed = asyncio.Event()
        self._waiters.add(changed)
        timer = self.clock.call_later(self.bind_timeout, changed.set)
        try:
            while not self._all_bound(key, node, plan):
                if self.clock.now() >= deadline:
                    raise VolumeBindingError("binding volumes: context deadline exceeded")
                changed.clear()
                await changed.wait()
        finally:
            timer.cancel()
            self._waiters.discard(changed)

    def _all_bound(self, key: str, node: Node, plan: VolumePlan) -> bool:
        """kube-scheduler's `checkBindings`: True when every claim is bound to a PV fitting
        the node, False while one is not yet; raises when the binding cannot complete."""
        if key not in self._assumed:
            raise VolumeBindingError(f"binding volumes: pod {key} is no longer waiting")
        provisioned = {uid_of(claim) for claim in plan.provision}
        for chosen, _ in plan.static:
            found = self.volume(name_of(chosen))
            if found is None or not (found.get("spec") or {}).get("claimRef"):
                raise VolumeBindingError(
                    f'binding volumes: ClaimRef got reset for pv "{name_of(chosen)}"')
        for claim in plan.claims():
            name = name_of(claim)
            current = self.claim(namespace_of(claim) or "", name)
            if current is None or uid_of(current) != uid_of(claim):
                raise VolumeBindingError(
                    f'binding volumes: persistentvolumeclaim "{name}" was deleted')
            if uid_of(claim) in provisioned and SELECTED_NODE not in annotations_of(current):
                raise VolumeBindingError(
                    f'binding volumes: selectedNode annotation reset for PVC "{name}"')
            if not is_claim_bound(current):
                return False
            volume = self.volume((current.get("spec") or {}).get("volumeName") or "")
            if volume is None:
                return False
            if not volume_fits_node(volume, node):
                raise VolumeBindingError(
                    f'binding volumes: pv "{name_of(volume)}" node affinity doesn\'t match '
                    f'node "{name_of(node)}"')
        return True
