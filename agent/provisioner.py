"""The node's provisioner and deleter of `minik.dev/docker-volume` volumes.

Like an external provisioner (`sig-storage-lib-external-provisioner`'s
controller) it runs beside the volumes it makes, on the node, driven by
informers of claims, PVs and StorageClasses through the API; the control
plane never touches Docker. One work queue holds `claim/<ns>/<name>` and
`pv/<name>` keys; each sync is level-triggered (`agent.provisioning`
decides what is wanted).

Provisioning a claim: the event `Provisioning`, the Docker volume (found by
its labels when an earlier attempt made it, else created), the PV
pre-bound to the claim (`AlreadyExists` is success, as in the library: the
PV is named after the claim's uid), then `ProvisioningSucceeded`; a failure
is `ProvisioningFailed` and a retry with back-off. A PV already in the cache
means nothing to do.

Nothing leaks when the agent dies between the Docker volume and its PV: a
journal entry (a file in the agent's state directory, written before the
volume is created, removed once the PV exists) remembers the attempt. At
start, and whenever its claim is synced, an entry whose PV does not exist
and whose claim has gone (both asked of the API, not the cache) has its
Docker volume removed; while the claim still wants a volume, the next
attempt finds the same volume by its labels. A Docker volume whose PV an
administrator deleted (a `Retain` volume, say) has no entry and is kept.

Deleting: a Released PV of this provisioner on this node with reclaim
policy Delete loses its Docker volume (only one labelled as its own by this
instance), then the PV object; a failure is the PV event
`VolumeFailedDelete` and a retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from agent import labels
from agent.events import EventSink
from agent.provisioning import (
    PV_LABEL,
    Unprovisionable,
    build_pv,
    check_provisionable,
    claim_class,
    docker_volume_name,
    docker_volume_of,
    owns_volume,
    pv_name,
    should_delete,
    volume_labels,
    wants_provisioning,
)
from agent.runtime import Runtime, RuntimeFailure
from minik.api.errors import ApiError
from minik.api.meta import name_of, namespace_of, uid_of
from minik.api.objects import ObjectT, PersistentVolume, PersistentVolumeClaim, StorageClass
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, ResourceType
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock
from minik.machinery.informer import Informer, key_of
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

CLAIM = "claim/"
PV = "pv/"
WORKERS = 2


@dataclass(frozen=True, slots=True)
class Attempt:
    """A provisioning under way: the claim it is for and the Docker volume it made."""

    namespace: str
    name: str
    uid: str
    volume: str


class Journal:
    """Provisioning attempts whose PV may not exist yet, one small file each (blocking:
    the provisioner calls it in a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def begin(self, attempt: Attempt) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.root / f".{attempt.volume}.tmp"
        tmp.write_text(json.dumps([attempt.namespace, attempt.name, attempt.uid]))
        tmp.replace(self.root / attempt.volume)

    def end(self, volume: str) -> None:
        (self.root / volume).unlink(missing_ok=True)

    def attempts(self) -> list[Attempt]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                namespace, name, uid = json.loads(entry.read_text())
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable provisioning journal entry %s: %s", entry, e)
                continue
            found.append(Attempt(namespace, name, uid, entry.name))
        return found


class DockerVolumeProvisioner:
    """Provisions claims as Docker volumes on this node, and deletes Released ones."""

    def __init__(self, *, client: AsyncClient, runtime: Runtime, instance: str, node: str,
                 claims: Informer[PersistentVolumeClaim], volumes: Informer[PersistentVolume],
                 classes: Informer[StorageClass], journal: Journal, events: EventSink,
                 clock: Clock) -> None:
        self.client = client
        self.runtime = runtime
        self.instance = instance
        self.node = node
        self.claims = claims
        self.volumes = volumes
        self.classes = classes
        self.journal = journal
        self.events = events
        self.queue = WorkQueue("docker-volume-provisioner", clock=clock)
        claims.add_handler(on_add=self._claim_changed,
                           on_update=lambda old, new: self._claim_changed(new),
                           on_delete=self._claim_changed)
        volumes.add_handler(on_add=self._pv_changed,
                            on_update=lambda old, new: self._pv_changed(new))
        classes.add_handler(on_add=self._class_changed,
                            on_update=lambda old, new: self._class_changed(new))

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        self.queue.add(CLAIM + key_of(claim))

    def _pv_changed(self, pv: PersistentVolume) -> None:
        self.queue.add(PV + name_of(pv))

    def _class_changed(self, storage_class: StorageClass) -> None:
        """A class created after its claims (or fixed) lets them be provisioned."""
        for claim in self.claims.indexer.list():
            if claim_class(claim) == name_of(storage_class):
                self._claim_changed(claim)

    async def run(self) -> None:
        """Wait for the caches, look at every claim, PV and journal entry, then follow."""
        await asyncio.gather(self.claims.wait_synced(), self.volumes.wait_synced(),
                             self.classes.wait_synced())
        for attempt in await asyncio.to_thread(self.journal.attempts):
            self.queue.add(f"{CLAIM}{attempt.namespace}/{attempt.name}")
        for claim in self.claims.indexer.list():
            self._claim_changed(claim)
        for pv in self.volumes.indexer.list():
            self._pv_changed(pv)
        await run_workers(self.queue, self.sync, workers=WORKERS)

    async def sync(self, key: str) -> None:
        if key.startswith(PV):
            await self.sync_pv(key.removeprefix(PV))
        else:
            await self.sync_claim(key.removeprefix(CLAIM))

    # ------------------------------------------------------------ provisioning

    async def sync_claim(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        await self._abandon_attempts(key, claim)
        if claim is None:
            return
        storage_class = self.classes.indexer.get(claim_class(claim))
        if not wants_provisioning(claim, storage_class, node=self.node):
            return
        assert storage_class is not None
        if self.volumes.indexer.get(pv_name(claim)) is not None:
            return
        self.events.record(claim, "Normal", "Provisioning",
                           f'External provisioner is provisioning volume for claim "{key}"')
        try:
            check_provisionable(claim)
            pv = await self._provision(claim, storage_class)
        except Unprovisionable as e:
            self.events.record(claim, "Warning", "ProvisioningFailed", str(e))
            return
        except (RuntimeFailure, ApiError) as e:
            self.events.record(claim, "Warning", "ProvisioningFailed",
                               f'failed to provision volume with StorageClass '
                               f'"{claim_class(claim)}": {e}')
            raise
        self.events.record(claim, "Normal", "ProvisioningSucceeded",
                           f"Successfully provisioned volume {name_of(pv)}")

    async def _provision(self, claim: PersistentVolumeClaim,
                         storage_class: StorageClass) -> PersistentVolume:
        name = docker_volume_name(self.instance, claim)
        attempt = Attempt(namespace_of(claim) or "default", name_of(claim), uid_of(claim), name)
        await asyncio.to_thread(self.journal.begin, attempt)
        found = await self.runtime.list_volumes({labels.INSTANCE: self.instance,
                                                 PV_LABEL: pv_name(claim)})
        volume = found[0] if found else await self.runtime.create_volume(
            name, labels=volume_labels(self.instance, claim))
        pv = build_pv(claim, storage_class, node=self.node, volume=volume.name)
        try:
            created = await self.client.create(PERSISTENTVOLUMES, None, pv)
        except ApiError as e:
            if e.code != 409:
                raise
            created = await self.client.get(PERSISTENTVOLUMES, None, pv_name(claim))
            if docker_volume_of(created) != volume.name:
                log.info("PV %s was made elsewhere: removing this node's volume %s",
                         pv_name(claim), volume.name)
                await self.runtime.remove_volume(volume.name)
        await asyncio.to_thread(self.journal.end, name)
        return created

    async def _abandon_attempts(self, key: str, claim: PersistentVolumeClaim | None) -> None:
        """Remove the Docker volumes of attempts on this claim's name whose claim has gone
        and whose PV was never made (asked of the API: the caches may lag)."""
        namespace, _, name = key.partition("/")
        attempts = [a for a in await asyncio.to_thread(self.journal.attempts)
                    if (a.namespace, a.name) == (namespace, name)
                    and (claim is None or uid_of(claim) != a.uid)]
        for attempt in attempts:
            if await self._current(PERSISTENTVOLUMES, None, f"pvc-{attempt.uid}") is not None:
                await asyncio.to_thread(self.journal.end, attempt.volume)
                continue
            current = await self._current(PERSISTENTVOLUMECLAIMS, namespace, name)
            if current is not None and uid_of(current) == attempt.uid:
                continue
            log.info("claim %s (uid %s) went before its volume was provisioned: removing %s",
                     key, attempt.uid, attempt.volume)
            await self.runtime.remove_volume(attempt.volume)
            await asyncio.to_thread(self.journal.end, attempt.volume)

    async def _current(self, rt: ResourceType[ObjectT], namespace: str | None,
                       name: str) -> ObjectT | None:
        """The object as the API has it now, or None."""
        try:
            return await self.client.get(rt, namespace, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # ------------------------------------------------------------ deleting

    async def sync_pv(self, name: str) -> None:
        pv = self.volumes.indexer.get(name)
        if pv is None or not should_delete(pv, node=self.node):
            return
        volume = docker_volume_of(pv)
        assert volume is not None
        try:
            found = await self.runtime.volume(volume)
            if found is not None:
                if not owns_volume(pv, found.labels, instance=self.instance):
                    raise RuntimeFailure(f"the Docker volume {volume} is not labelled as this "
                                         f"PV's: keeping it")
                await self.runtime.remove_volume(volume)
        except RuntimeFailure as e:
            self.events.record(pv, "Warning", "VolumeFailedDelete", str(e))
            raise
        try:
            await self.client.delete(PERSISTENTVOLUMES, None, name_of(pv), uid=uid_of(pv))
        except ApiError as e:
            if e.code != 404:
                raise
