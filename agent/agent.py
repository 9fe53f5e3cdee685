"""The node agent (kubelet): pods bound to this node become Docker containers.

It talks to the control plane only through the REST API: an informer on
the pods bound to its node (and on ConfigMaps and Secrets, for environment
and volumes), status patches, events, and its Node and Lease. A relist loop
(the kubelet's PLEG) compares what Docker holds for this instance with the
last look and wakes the worker of every pod whose containers changed. It
runs every second, and at once when Docker's event stream says one of the
instance's containers died or was removed, so a crash, a `docker kill` or
a `docker rm` behind minik's back is acted on within a fraction of a
second (the events are only a hint: the list is the truth).

A sync that leaves a pod settled tells the relist what it saw, so the
agent's own creates wake nobody again, and a pod whose sync is running is
not woken for what that sync is doing. A pod update that changed only the
status (mostly the agent's own write) wakes nobody either; a pod marked for
deletion interrupts its running sync (an image pull, say) instead of
waiting for it. After a restart everything is rebuilt from Docker's
labels: running containers are adopted, not restarted; the volumes and
staged mounts of pods that went meanwhile are removed.

At start the agent asks the engine where it keeps its state (protected
from unprivileged hostPaths, see `agent.protected`) and whether it sees
the agent's mounts (see `agent.staging.staging_problem`). `purge` (for
`minik down --purge`) removes every pod's staged mounts and volumes, then
the state directory, but nothing while a mount remains below it.

Every part reads time from the one `Clock` the agent is given (its
monotonic and wall time, its `sleep`): the informers, pod workers, probes,
hooks, back-offs, node status and the relist and resync loops, so tests
drive them all on a `ManualClock`.

`run` can be called again after it failed and `shutdown` (without
removing containers) ran: each run builds its pod workers, syncer and
probes afresh. What outlives runs is given to the agent and never closed
by it: the runtime and the metrics (a registry takes a name only once).

The pod network is given too, as a function that makes sure it exists
(`cni.network.ensure_pod_network`, bound by the process wiring): the pod
network uses the agent's runtime, so the agent does not import it back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from agent import labels, trace
from agent.images import ImageManager
from agent.kubelet_server import KubeletServer
from agent.lister import ContainerLister
from agent.metrics import STATS_INTERVAL, AgentMetrics
from agent.mounts import MountInside, mount_points_under, remove_tree
from agent.node import NodeStatusReporter
from agent.plan import BACKOFF_CAP, container_backoff
from agent.pod_dns import HOST_RESOLV_CONF, PodResolvConfs
from agent.podstate import StateFingerprint, group_by_pod
from agent.probes import ProbeManager, ProbeMetrics
from agent.protected import Protected
from agent.runtime import ContainerNotFound, NetworkInfo, Runtime, RuntimeFailure
from agent.sa_tokens import ServiceAccountTokens
from agent.storage import NodeStorage
from agent.sync import PodSyncer, SyncConfig
from agent.volumes import VolumeError, VolumeManager
from agent.workers import PodWorkers
from minik.api.meta import is_being_deleted, uid_of
from minik.api.names import CLUSTER_DOMAIN
from minik.api.objects import JsonObject, PersistentVolumeClaim, Pod
from minik.api.resources import REGISTRY
from minik.api.volumes import claim_keys
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock, LoopClock, sleep
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Informer, key_of
from minik.machinery.supervisor import Supervisor

log = logging.getLogger(__name__)

PAUSE_IMAGE = "minik/pause:1.0"
RESYNC_PERIOD = 10.0
SHUTDOWN_TIMEOUT = 2.0
MIN_RELIST_GAP = 0.1  # bounds relists to 10/s when many containers stop at once
INSTANCE_HOME = "minik's home"
"""The state directory's parent: the instance's home (store, keys, token), kept from pods."""

EnsureNetwork = Callable[[], Awaitable[NetworkInfo]]
"""Creates or reuses the node's pod network, and says which it is."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    instance: str
    state_dir: Path
    node_name: str = ""
    pause_image: str = PAUSE_IMAGE
    host_ip: str = "127.0.0.1"
    relist_period: float = 1.0
    restart_backoff: float = 10.0
    restart_backoff_cap: float = BACKOFF_CAP
    token: str = ""
    kubelet_ssl: ssl.SSLContext | None = None
    resolv_conf: Path = HOST_RESOLV_CONF
    """The host's resolver configuration, which pods' resolv.conf files start from."""
    stats_interval: float = STATS_INTERVAL
    """How often the containers' stats are sampled (cAdvisor's housekeeping interval)."""

    @property
    def node(self) -> str:
        return self.node_name or socket.gethostname().lower()


class Agent:
    """Runs the node: network, node status, pod workers, relist, kubelet API."""

    def __init__(self, config: AgentConfig, *, client: AsyncClient, runtime: Runtime,
                 network: EnsureNetwork, metrics: AgentMetrics | None = None,
                 probe_metrics: ProbeMetrics | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        self.network = network
        self.clock: Clock = clock or LoopClock()
        self.events = EventRecorder(client, "kubelet", host=config.node, clock=self.clock)
        self.metrics = metrics or AgentMetrics()
        self.probe_metrics = probe_metrics
        self.supervisor = Supervisor(clock=self.clock)
        self.pods = Informer(client, REGISTRY.get("pods"),
                             field_selector=f"spec.nodeName={config.node}", clock=self.clock)
        self.pods.add_index("uid", lambda pod: [uid_of(pod)])
        self.pods.add_handler(
            on_add=self._on_pod_add,
            on_update=self._on_pod_update,
            on_delete=lambda pod: self._interrupt(uid_of(pod)),
        )
        self.pods.add_index("claim", lambda pod: claim_keys(_pod(pod)))
        self.configmaps = Informer(client, REGISTRY.get("configmaps"), clock=self.clock)
        self.secrets = Informer(client, REGISTRY.get("secrets"), clock=self.clock)
        self.services = Informer(client, REGISTRY.get("services"), namespace="default",
                                 field_selector="metadata.name=kubernetes", clock=self.clock)
        """The `kubernetes` Service, whose address every container is given (`agent.env`)."""
        self.storage = NodeStorage(client, runtime, instance=config.instance, node=config.node,
                                   state_dir=config.state_dir, clock=self.clock)
        self.storage.claims.add_handler(on_add=self._on_claim,
                                        on_update=lambda old, new: self._on_claim(new))
        self.volumes = VolumeManager(config.state_dir / "volumes",
                                     configmaps=self.configmaps.indexer.get_by,
                                     secrets=self.secrets.indexer.get_by,
                                     protected=Protected.for_node(
                                         {config.state_dir.parent: INSTANCE_HOME}),
                                     claims=self.storage.claim,
                                     persistent_volumes=self.storage.persistent_volume,
                                     docker_volumes=runtime.volume,
                                     tokens=ServiceAccountTokens(client, self.clock))
        self.resolv_confs = PodResolvConfs(config.state_dir / "volumes" / "pods",
                                           cluster_domain=CLUSTER_DOMAIN,
                                           host_resolv_conf=config.resolv_conf)
        self.workers: PodWorkers | None = None
        self.syncer: PodSyncer | None = None
        self.probes: ProbeManager | None = None
        self.kubelet: KubeletServer | None = None
        self.lister = ContainerLister(runtime, labels.instance_selector(config.instance))
        self._seen: dict[str, StateFingerprint] = {}
        self._nudge = asyncio.Event()

    def _pod_by_uid(self, uid: str) -> Pod | None:
        found = self.pods.indexer.by_index("uid", uid)
        return _pod(found[0]) if found else None

    def _pod_by_name(self, namespace: str, name: str) -> Pod | None:
        found = self.pods.indexer.get_by(namespace, name)
        return _pod(found) if found is not None else None

    def _build(self, network: str) -> None:
        probes = ProbeManager(self.runtime, on_change=self._wake, events=self.events,
                              metrics=self.probe_metrics, clock=self.clock)
        self.probes = probes
        self.syncer = PodSyncer(
            SyncConfig(self.config.instance, self.config.node, self.config.host_ip, network,
                       self.config.pause_image),
            runtime=self.runtime, lister=self.lister, client=self.client, events=self.events,
            images=ImageManager(self.runtime, self.events, container_backoff(self.clock)),
            volumes=self.volumes, probes=probes,
            backoff=container_backoff(self.clock, base=self.config.restart_backoff,
                                      cap=self.config.restart_backoff_cap),
            configmaps=self.configmaps.indexer.get_by, secrets=self.secrets.indexer.get_by,
            pod_by_uid=self._pod_by_uid, metrics=self.metrics, on_settled=self._settled,
            clock=self.clock, resolv_confs=self.resolv_confs,
            services=self.services.indexer.get_by,
        )
        self.workers = PodWorkers(self.syncer.sync, clock=self.clock)

    def _settled(self, uid: str, fingerprint: StateFingerprint | None) -> None:
        """A sync saw the pod like this and needs nothing more: the relist need not wake it."""
        if fingerprint is None:
            self._seen.pop(uid, None)
        else:
            self._seen[uid] = fingerprint

    def _on_pod_add(self, obj: JsonObject) -> None:
        trace.mark(_pod(obj), "seen")
        self._wake(uid_of(obj))

    def _on_pod_update(self, old: JsonObject, new: JsonObject) -> None:
        uid = uid_of(new)
        if is_being_deleted(new) and not is_being_deleted(old):
            self._interrupt(uid)
        elif not status_only(old, new):
            self._wake(uid)

    def _on_claim(self, claim: PersistentVolumeClaim) -> None:
        """A claim changed (bound, say): the pods waiting to mount it try again."""
        for pod in self.pods.indexer.by_index("claim", key_of(claim)):
            self._wake(uid_of(pod))

    def _interrupt(self, uid: str) -> None:
        """The pod is being deleted: do not let its running sync hold that up."""
        if self.workers is not None:
            self.workers.interrupt(uid)

    def _wake(self, uid: str) -> None:
        if self.workers is not None:
            self.workers.update(uid)

    async def run(self) -> None:
        self._seen = {}
        network, engine = await asyncio.gather(self.network(), self.runtime.engine())
        await asyncio.to_thread(self.volumes.use_engine, engine)
        self.resolv_confs.cluster_dns = network.gateway
        self._build(network.name)
        for pod in self.pods.indexer.list():
            self._wake(uid_of(pod))
        kubelet_port = await self._start_kubelet_server()
        sup = self.supervisor
        sup.start("agent:events", self.events.run)
        sup.start("agent:configmaps", self.configmaps.run)
        sup.start("agent:secrets", self.secrets.run)
        sup.start("agent:services", self.services.run)
        self.storage.start(sup)
        await asyncio.gather(self.configmaps.wait_synced(), self.secrets.wait_synced(),
                             self.services.wait_synced(),
                             self.storage.wait_synced())
        sup.start("agent:pods", self.pods.run)
        await self.pods.wait_synced()
        await self._wake_leftovers()
        reporter = NodeStatusReporter(
            self.client, self.config.node, address=self.config.host_ip,
            kubelet_port=kubelet_port, runtime_version=f"docker://{await self.runtime.version()}",
            clock=self.clock,
        )
        sup.start("agent:node", reporter.run)
        sup.start("agent:relist", self._relist_forever)
        sup.start("agent:container-events", self._follow_container_events)
        sup.start("agent:resync", self._resync_forever)
        sup.start("agent:stats", lambda: self.metrics.collect_usage_forever(
            self.runtime, self.config.instance, self.clock, self.config.stats_interval))
        log.info("node agent %s running (network %s %s)", self.config.node, network.name,
                 network.subnet)
        await asyncio.Event().wait()

    async def _wake_leftovers(self) -> None:
        """Volumes and staged mounts of pods that went while no agent ran: their workers
        find no pod and clean up."""
        known = {uid_of(pod) for pod in self.pods.indexer.list()}
        on_disk = await asyncio.gather(asyncio.to_thread(self.volumes.known_pods),
                                       asyncio.to_thread(self.resolv_confs.known_pods))
        for uid in set.union(*on_disk) - known:
            self._wake(uid)

    async def _start_kubelet_server(self) -> int:
        server = KubeletServer(self.runtime, instance=self.config.instance,
                               token=self.config.token, pod_lookup=self._pod_by_name,
                               clock=self.clock, metrics=self.metrics)
        self.kubelet = server
        return await server.start("127.0.0.1", 0, ssl_context=self.config.kubelet_ssl)

    async def relist(self) -> None:
        infos = await self.lister.list()
        self.metrics.observe_relist(infos)
        groups = group_by_pod(infos)
        seen = {uid: state.fingerprint() for uid, state in groups.items()}
        for uid in set(seen) | set(self._seen):
            if seen.get(uid) == self._seen.get(uid):
                continue
            if self.workers is not None and self.workers.syncing(uid):
                _keep(seen, uid, self._seen.get(uid))
            else:
                self._wake(uid)
        self._seen = seen

    async def _relist_forever(self) -> None:
        """Relist every relist period, or at once on a nudge; never twice in MIN_RELIST_GAP."""
        while True:
            self._nudge.clear()
            await self.relist()
            await sleep(self.clock, MIN_RELIST_GAP)
            period = self.clock.call_later(self.config.relist_period, self._nudge.set)
            try:
                await self._nudge.wait()
            finally:
                period.cancel()

    async def _follow_container_events(self) -> None:
        """Relist at once when one of the instance's containers stops or goes."""
        selector = labels.instance_selector(self.config.instance)
        async for _ in self.runtime.container_events(selector):
            self._nudge.set()
        raise RuntimeFailure("the engine closed its event stream")

    async def _resync_forever(self) -> None:
        while True:
            await sleep(self.clock, RESYNC_PERIOD)
            for obj in self.pods.indexer.list():
                if await self.volumes.refresh(_pod(obj)):
                    self._wake(uid_of(obj))

    async def shutdown(self, *, remove_containers: bool) -> None:
        """Stop background work; with `remove_containers`, stop and remove every container.

        Works whether or not `run` ever ran, and leaves the agent ready to run
        again; the runtime stays open (its owner closes it).
        """
        await self.supervisor.stop()
        if self.workers is not None:
            await self.workers.close()
            self.workers = None
        if self.probes is not None:
            await self.probes.close()
            self.probes = None
        if self.kubelet is not None:
            await self.kubelet.stop()
            self.kubelet = None
        if remove_containers:
            await self._remove_all()
            await self.remove_volumes()

    async def remove_volumes(self) -> bool:
        """Remove the volumes and staged mounts of every pod on disk; one pod's failure is
        logged and the others still go. False when some could not be removed."""
        removed = True
        for uid in await asyncio.to_thread(self.volumes.known_pods):
            try:
                await self.volumes.cleanup(uid)
            except VolumeError as e:
                log.error("cannot remove the volumes of pod %s: %s", uid, e)
                removed = False
        return removed

    async def purge(self) -> bool:
        """Remove the agent's state directory, every pod's mounts and volumes first, and the
        instance's Docker volumes (its PVs' data); when a mount remains below the
        directory, nothing more is removed (the host's files may be behind it): logged, and
        False, as when a Docker volume would not go."""
        await self.remove_volumes()
        docker_volumes = await self.storage.remove_docker_volumes()
        return await asyncio.to_thread(purge_state_dir, self.config.state_dir) and docker_volumes

    async def _remove_all(self) -> None:
        infos = await self.runtime.list(labels.instance_selector(self.config.instance))
        apps = [i for i in infos if not labels.is_sandbox(i.labels)]
        sandboxes = [i for i in infos if labels.is_sandbox(i.labels)]
        for group in (apps, sandboxes):
            results = await asyncio.gather(*(self._force_remove(i.id) for i in group),
                                           return_exceptions=True)
            for info, result in zip(group, results, strict=True):
                if isinstance(result, Exception):
                    log.error("removing container %s (%s) failed: %s", info.name, info.id[:12],
                              result)

    async def _force_remove(self, container_id: str) -> None:
        try:
            await self.runtime.stop(container_id, timeout=SHUTDOWN_TIMEOUT)
            await self.runtime.remove(container_id, force=True)
        except ContainerNotFound:
            return


def _pod(obj: JsonObject) -> Pod:
    """A pod of the informer's cache: decoded JSON the API server validated as a Pod."""
    return cast(Pod, obj)


def _keep(seen: dict[str, StateFingerprint], uid: str,
          fingerprint: StateFingerprint | None) -> None:
    """Leave a pod as last seen: its running sync settles on, or wakes for, what it finds."""
    if fingerprint is None:
        seen.pop(uid, None)
    else:
        seen[uid] = fingerprint


def status_only(old: JsonObject, new: JsonObject) -> bool:
    """Whether an update changed only the pod's status, which needs no sync.

    Mostly it is the agent's own status write coming back; like the
    kubelet's pod config, only changes to spec or metadata wake the worker.
    """
    return _without_status(old) == _without_status(new)


def _without_status(pod: JsonObject) -> JsonObject:
    md = {k: v for k, v in pod["metadata"].items() if k not in ("resourceVersion",
                                                                "managedFields")}
    return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": md}


def purge_state_dir(state_dir: Path) -> bool:
    """Remove the agent's state directory unless a mount is below it; False (logged) then."""
    again = "unmount them, then `minik up -d` and `minik down --purge` again"
    if mounted := mount_points_under(state_dir):
        log.error("not removing %s: mounts remain below it (%s); %s", state_dir,
                  ", ".join(mounted), again)
        return False
    try:
        remove_tree(state_dir)
    except MountInside as e:
        log.error("stopped removing %s at %s, a mount; %s", state_dir, e.path, again)
        return False
    except OSError as e:
        log.error("cannot remove %s: %s", state_dir, e)
        return False
    return True


def default_state_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
