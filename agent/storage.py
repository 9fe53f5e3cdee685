"""The node's storage: watch caches of claims, PVs and classes, and the volume provisioner.

The agent reads claims and PVs from these informers to mount
`persistentVolumeClaim` volumes (`agent.claims`), and the
`minik.dev/docker-volume` provisioner (`agent.provisioner`) acts on all
three; its events come from the component `minik.dev/docker-volume_<node>`,
as an external provisioner's do. Its journal lives in the agent's state
directory. `remove_docker_volumes` is `minik down --purge`'s: every
Docker volume labelled with the instance goes, once no container uses it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from agent import labels
from agent.provisioner import DockerVolumeProvisioner, Journal
from agent.runtime import Runtime, RuntimeFailure
from minik.api.objects import PersistentVolume, PersistentVolumeClaim
from minik.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from minik.api.volumes import PROVISIONER
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Informer
from minik.machinery.supervisor import Supervisor

log = logging.getLogger(__name__)

JOURNAL = "provisioning"


class NodeStorage:
    """Claims, PVs and StorageClasses as this node sees them, and its provisioner."""

    def __init__(self, client: AsyncClient, runtime: Runtime, *, instance: str, node: str,
                 state_dir: Path, clock: Clock) -> None:
        self.runtime = runtime
        self.instance = instance
        self.claims = Informer(client, PERSISTENTVOLUMECLAIMS, clock=clock)
        self.volumes = Informer(client, PERSISTENTVOLUMES, clock=clock)
        self.classes = Informer(client, STORAGECLASSES, clock=clock)
        self.events = EventRecorder(client, f"{PROVISIONER}_{node}", host=node, clock=clock)
        self.provisioner = DockerVolumeProvisioner(
            client=client, runtime=runtime, instance=instance, node=node, claims=self.claims,
            volumes=self.volumes, classes=self.classes, journal=Journal(state_dir / JOURNAL),
            events=self.events, clock=clock)

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None:
        return self.claims.indexer.get_by(namespace, name)

    def persistent_volume(self, name: str) -> PersistentVolume | None:
        return self.volumes.indexer.get_by(None, name)

    def start(self, supervisor: Supervisor) -> None:
        supervisor.start("agent:claims", self.claims.run)
        supervisor.start("agent:persistentvolumes", self.volumes.run)
        supervisor.start("agent:storageclasses", self.classes.run)
        supervisor.start("agent:provisioner-events", self.events.run)
        supervisor.start("agent:provisioner", self.provisioner.run)

    async def wait_synced(self) -> None:
        await asyncio.gather(self.claims.wait_synced(), self.volumes.wait_synced())

    async def remove_docker_volumes(self) -> bool:
        """Remove the instance's Docker volumes; False (logged) when some would not go."""
        try:
            found = await self.runtime.list_volumes(labels.instance_selector(self.instance))
        except RuntimeFailure as e:
            log.error("cannot list the instance's Docker volumes: %s", e)
            return False
        removed = True
        for volume in found:
            try:
                await self.runtime.remove_volume(volume.name)
            except RuntimeFailure as e:
                log.error("cannot remove Docker volume %s: %s", volume.name, e)
                removed = False
        return removed
