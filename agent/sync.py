"""Syncing one pod: plan, carry the plan out, report status; or tear the pod down.

`PodSyncer.sync(uid)` is what a pod worker runs (`agent.workers`); it asks
to be run again by raising `Requeue(after=seconds)`: when a container's
back-off ends, or soon after a status write or a delete that failed. For a
live pod it plans with `compute_pod_actions`, has `agent.execute` carry
the plan out, and plans again on what the runtime then holds: once more
after starting containers (so a container that crashed at once is
reported in back-off), again and again after a new sandbox or a kill. A
container the engine would not create (`CreateContainerError`) or start
(`RunContainerError`) is reported with that reason by the sync that tried
it, and retried with the same back-off as a crash (`CrashLoopBackOff`
while it waits). The sync then writes the pod's status if it changed
(`agent.status_writer`; a failed write is retried). When the last plan
needs nothing done, `on_settled` hears the runtime state's fingerprint,
so the agent's relist does not wake the pod for changes the sync made
itself.

How a sync learns what the runtime holds for its pod, before acting and
after, at the least cost to the engine, is `agent.runtime_state`'s.

For a pod marked for deletion it stops the containers gracefully
(`agent.termination`), removes them and deletes the pod object with grace
0. Containers whose pod is gone are removed, and everything the agent
remembers of the pod is forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from agent import trace
from agent.env import Lookup
from agent.events import EventSink
from agent.execute import FailedCreates, PlanExecutor, Waiting, remove_container, stop_container
from agent.images import ImageManager
from agent.lister import ContainerLister
from agent.metrics import AgentMetrics
from agent.plan import (
    RESET_AFTER,
    backoff_key,
    compute_pod_actions,
    failed_since,
    pod_is_done,
)
from agent.pod_dns import PodResolvConfs
from agent.podstate import PodRuntimeState, StateFingerprint
from agent.probes import ProbeManager, RunningContainer
from agent.runtime import Runtime
from agent.runtime_state import RuntimeStates
from agent.status_writer import PodByUid, StatusWriter
from agent.termination import PodTerminator
from agent.volumes import VolumeManager
from minik.api.meta import finalizers_of, is_being_deleted, is_pod_terminal, uid_of
from minik.api.objects import Pod
from minik.client.aio import AsyncClient
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)

MAX_ROUNDS = 4
WAITING_RETRY = 2.0
WRITE_RETRY = 1.0

Settled = Callable[[str, StateFingerprint | None], None]
"""Told the runtime state a sync left a pod in, when nothing more is to be done (None: gone)."""


@dataclass(frozen=True, slots=True)
class SyncConfig:
    instance: str
    node_name: str
    host_ip: str
    network: str
    pause_image: str


class PodSyncer:
    """Brings one pod's containers to its spec, or removes them."""

    def __init__(
        self, config: SyncConfig, *, runtime: Runtime, lister: ContainerLister,
        client: AsyncClient, events: EventSink,
        images: ImageManager, volumes: VolumeManager, probes: ProbeManager, backoff: Backoff,
        configmaps: Lookup, secrets: Lookup, pod_by_uid: PodByUid, metrics: AgentMetrics,
        on_settled: Settled | None = None, clock: Clock | None = None,
        resolv_confs: PodResolvConfs | None = None, services: Lookup | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or LoopClock()
        self.runtime = runtime
        self.lister = lister
        self.events = events
        self.images = images
        self.volumes = volumes
        self.probes = probes
        self.backoff = backoff
        self.pod_by_uid = pod_by_uid
        self.metrics = metrics
        self.on_settled: Settled = on_settled or (lambda uid, fingerprint: None)
        self.failed_creates = FailedCreates()
        self.states = RuntimeStates(runtime, lister)
        self.executor = PlanExecutor(
            instance=config.instance, network=config.network, pause_image=config.pause_image,
            host_ip=config.host_ip, runtime=runtime, events=events, images=images,
            volumes=volumes, backoff=backoff, configmaps=configmaps, secrets=secrets,
            metrics=metrics, failed_creates=self.failed_creates, clock=self.clock,
            resolv_confs=resolv_confs, services=services)
        self.resolv_confs = resolv_confs
        self.terminator = PodTerminator(runtime=runtime, client=client, events=events,
                                        pod_ip=self.executor.pod_ip, clock=self.clock)
        self.status = StatusWriter(client=client, pod_by_uid=pod_by_uid, probes=probes,
                                   metrics=metrics, host_ip=config.host_ip, clock=self.clock)

    async def state(self, uid: str) -> PodRuntimeState:
        return await self.states.current(uid)

    async def sync(self, uid: str) -> None:
        pod = self.pod_by_uid(uid)
        if pod is None:
            await self.remove_pod(uid)
        elif is_being_deleted(pod):
            await self.terminate(pod)
        else:
            await self._sync_live(pod)

    async def _sync_live(self, pod: Pod) -> None:
        uid = uid_of(pod)
        trace.mark(pod, "sync")
        state = await self.states.first(uid)
        self._reset_long_runs(pod, state)
        waiting: Waiting = {}
        failed: Waiting = {}
        replan, settled = True, False
        for _ in range(MAX_ROUNDS):
            actions = compute_pod_actions(pod, state, backoff=self.backoff,
                                          liveness_failed=self.probes.liveness_failed(uid),
                                          failed_creates=self.failed_creates.of(uid))
            waiting.update(actions.waiting)
            if actions.empty:
                settled = True
                break
            if not replan:
                break
            made: list[str] = []
            replan = await self.executor.execute(pod, state, actions, failed, made)
            state = await self.states.after(state, actions, made)
        waiting.update(failed)
        if is_pod_terminal(pod) or pod_is_done(pod, state):
            await self._stop_sandbox(state)
            self.probes.remove(uid)
        else:
            self.probes.sync(pod, _running(state, self.clock.wall().timestamp()),
                             self.executor.pod_ip(pod, state))
            if settled:
                self.on_settled(uid, state.fingerprint())
        if not await self.status.write(uid, state, waiting):
            raise Requeue("the status write failed", after=WRITE_RETRY)
        after = self._requeue(pod, state, waiting)
        if after is not None:
            raise Requeue("containers are waiting", after=after)

    def _requeue(self, pod: Pod, state: PodRuntimeState,
                 waiting: Waiting) -> float | None:
        if not waiting:
            return None
        uid = uid_of(pod)
        failed_creates = self.failed_creates.of(uid)
        delays = [WAITING_RETRY]
        for name in waiting:
            latest = state.latest(name)
            if latest is not None or name in failed_creates:
                left = self.backoff.remaining(backoff_key(uid, name),
                                              failed_since(latest, failed_creates.get(name)))
                if left > 0:
                    delays.append(left + 0.05)
        return max(0.05, min(delays))

    def _reset_long_runs(self, pod: Pod, state: PodRuntimeState) -> None:
        uid = uid_of(pod)
        for name, attempts in state.containers.items():
            last = attempts[0]
            if last.started_at and last.finished_at:
                ran = (last.finished_at - last.started_at).total_seconds()
                if ran >= RESET_AFTER:
                    self.backoff.reset(backoff_key(uid, name))

    async def _stop_sandbox(self, state: PodRuntimeState) -> None:
        sandbox = state.sandbox
        if sandbox is not None and sandbox.state == "running":
            await stop_container(self.runtime, sandbox.id, 0)

    async def terminate(self, pod: Pod) -> None:
        """Graceful deletion: preStop, SIGTERM, wait what is left of the grace, SIGKILL.

        A pod that finalizers keep after the delete (a Job's) first gets its
        terminal status (phase Failed, or Succeeded when every container exited
        0), as the kubelet writes it, for whoever removes the finalizer to read.
        Done once the pod object is deleted (or already gone or replaced);
        a failed delete is retried.
        """
        uid = uid_of(pod)
        state = await self.state(uid)
        self.probes.remove(uid)
        await self.terminator.stop_containers(pod, state)
        if finalizers_of(pod) and not await self.status.write(uid, await self.state(uid), {},
                                                              final=True):
            raise Requeue("the final status write failed", after=WRITE_RETRY)
        await self.remove_pod(uid)
        await self.terminator.delete_pod(pod)

    async def remove_pod(self, uid: str) -> None:
        """Remove every container of a pod, its sandbox last, and its volumes; forget it."""
        state = await self.state(uid)
        sandbox_ids = {s.id for s in state.sandboxes}
        for info in state.all():
            if info.id not in sandbox_ids:
                await remove_container(self.runtime, info.id)
        for sandbox_id in sandbox_ids:
            await remove_container(self.runtime, sandbox_id)
        self.probes.remove(uid)
        self.metrics.forget(uid)
        self.images.forget(uid)
        self.backoff.forget_prefix(backoff_key(uid, ""))
        self.failed_creates.forget(uid)
        self.status.forget(uid)
        self.states.forget(uid)
        if self.resolv_confs is not None:
            await self.resolv_confs.remove(uid)
        await self.volumes.cleanup(uid)
        self.on_settled(uid, None)


def _running(state: PodRuntimeState, now: float) -> list[RunningContainer]:
    """The running app containers, with when they started (`now`, epoch seconds, if unknown)."""
    sandbox = state.sandbox
    running = []
    for name, attempts in state.containers.items():
        latest = attempts[0]
        if latest.state == "running" and (sandbox is None or latest.id != sandbox.id):
            started = latest.started_at.timestamp() if latest.started_at else now
            running.append(RunningContainer(name, latest.id, started))
    return running
