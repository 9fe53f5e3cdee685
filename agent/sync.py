"""Syncing one pod: plan, carry the plan out, report status; or tear the pod down.

`PodSyncer.sync(uid)` is what a pod worker runs (`agent.workers`); it asks
to be run again by raising `Requeue(after=seconds)`: when a container's
back-off ends, or soon after a status write or a delete that failed. For a
live pod it plans
with `compute_pod_actions`, carries the plan out in order (old attempts
removed, containers killed, sandbox recreated, init or app containers
started with their image, environment and volumes), and plans again on
what the runtime then holds: once more after starting containers (so a
container that crashed at once is reported in back-off), again and again
after a new sandbox or a kill. A container the engine would not create
(`CreateContainerError`) or start (`RunContainerError`) is reported with
that reason by the sync that tried it, and retried with the same back-off
as a crash (`CrashLoopBackOff` while it waits). The sync then writes the
pod's status if it changed, computed from the pod as the cache holds it
at that moment (a failed write is retried). When the last plan needs nothing done,
`on_settled` hears the runtime state's fingerprint, so the agent's relist
does not wake the pod for changes the sync made itself.

How a sync learns what the runtime holds for its pod, before acting and
after, at the least cost to the engine, is `agent.runtime_state`'s.

For a pod marked for deletion it runs preStop hooks, stops containers
within what is left of the grace period, removes them, and deletes the pod
object with grace 0. Containers whose pod is gone are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent import hooks, labels, trace
from agent.containers import (
    PodContext,
    PodSpecError,
    container_spec,
    pod_ip,
    sandbox_spec,
    start_failure_message,
)
from agent.env import ConfigError, Lookup, container_env
from agent.events import EventSink
from agent.images import ImageManager
from agent.lister import ContainerLister
from agent.metrics import AgentMetrics
from agent.plan import (
    RESET_AFTER,
    PodActions,
    Start,
    backoff_key,
    compute_pod_actions,
    failed_since,
    phase_is_terminal,
    pod_is_done,
)
from agent.podstate import PodRuntimeState
from agent.probes import ProbeManager, RunningContainer
from agent.runtime import ContainerInfo, ContainerNotFound, Runtime, RuntimeFailure
from agent.runtime_state import RuntimeStates
from agent.status import pod_status
from agent.volumes import VolumeError, VolumeManager
from minik.api import errors, meta
from minik.api.resources import REGISTRY
from minik.client.aio import AsyncClient
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)

PODS = REGISTRY.get("pods")
MAX_ROUNDS = 4
WAITING_RETRY = 2.0
KILL_ALL_TIMEOUT = 2.0
WRITE_RETRY = 1.0

Settled = Callable[[str, tuple | None], None]
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
        configmaps: Lookup, secrets: Lookup, pod_by_uid: Any, metrics: AgentMetrics,
        on_settled: Settled | None = None, clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or LoopClock()
        self.runtime = runtime
        self.lister = lister
        self.client = client
        self.events = events
        self.images = images
        self.volumes = volumes
        self.probes = probes
        self.backoff = backoff
        self.configmaps = configmaps
        self.secrets = secrets
        self.pod_by_uid = pod_by_uid
        self.metrics = metrics
        self.on_settled = on_settled or (lambda uid, fingerprint: None)
        self._started: set[str] = set()
        self._failed_creates: dict[str, dt.datetime] = {}
        self.states = RuntimeStates(runtime, lister)

    async def state(self, uid: str) -> PodRuntimeState:
        return await self.states.current(uid)

    async def sync(self, uid: str) -> None:
        pod = self.pod_by_uid(uid)
        if pod is None:
            await self.remove_pod(uid)
        elif pod["metadata"].get("deletionTimestamp"):
            await self.terminate(pod)
        else:
            await self._sync_live(pod)

    async def _sync_live(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        trace.mark(pod, "sync")
        state = await self.states.first(uid)
        self._reset_long_runs(pod, state)
        waiting: dict[str, tuple[str, str]] = {}
        failed: dict[str, tuple[str, str]] = {}
        replan, settled = True, False
        for _ in range(MAX_ROUNDS):
            actions = compute_pod_actions(pod, state, backoff=self.backoff,
                                          liveness_failed=self.probes.liveness_failed(uid),
                                          failed_creates=self._failed_creates_of(uid))
            waiting.update(actions.waiting)
            if actions.empty:
                settled = True
                break
            if not replan:
                break
            made: list[str] = []
            replan = await self._execute(pod, state, actions, failed, made)
            state = await self.states.after(state, actions, made)
        waiting.update(failed)
        if phase_is_terminal(pod) or pod_is_done(pod, state):
            await self._stop_sandbox(state)
            self.probes.remove(uid)
        else:
            self.probes.sync(pod, _running(state, self.clock.wall().timestamp()),
                             self._pod_ip(pod, state))
            if settled:
                self.on_settled(uid, state.fingerprint())
        if not await self._write_status(uid, state, waiting):
            raise Requeue("the status write failed", after=WRITE_RETRY)
        after = self._requeue(pod, state, waiting)
        if after is not None:
            raise Requeue("containers are waiting", after=after)

    def _requeue(self, pod: dict[str, Any], state: PodRuntimeState,
                 waiting: dict[str, tuple[str, str]]) -> float | None:
        if not waiting:
            return None
        uid = pod["metadata"]["uid"]
        failed_creates = self._failed_creates_of(uid)
        delays = [WAITING_RETRY]
        for name in waiting:
            latest = state.latest(name)
            if latest is not None or name in failed_creates:
                left = self.backoff.remaining(backoff_key(uid, name),
                                              failed_since(latest, failed_creates.get(name)))
                if left > 0:
                    delays.append(left + 0.05)
        return max(0.05, min(delays))

    def _failed_creates_of(self, uid: str) -> dict[str, dt.datetime]:
        """When the engine last refused to create each of the pod's containers, by name."""
        prefix = backoff_key(uid, "")
        return {key[len(prefix):]: at for key, at in self._failed_creates.items()
                if key.startswith(prefix)}

    def _reset_long_runs(self, pod: dict[str, Any], state: PodRuntimeState) -> None:
        uid = pod["metadata"]["uid"]
        for name, attempts in state.containers.items():
            last = attempts[0]
            if last.started_at and last.finished_at:
                ran = (last.finished_at - last.started_at).total_seconds()
                if ran >= RESET_AFTER:
                    self.backoff.reset(backoff_key(uid, name))

    async def _execute(
        self, pod: dict[str, Any], state: PodRuntimeState, actions: PodActions,
        waiting: dict[str, tuple[str, str]], made: list[str],
    ) -> bool:
        """Carry out a plan, noting the containers it creates in `made`; True when the pod
        must be planned again at once."""
        for container_id in actions.remove:
            await self._remove(container_id)
        for kill in actions.kill:
            self.events.record(pod, "Normal", kill.reason, kill.message)
            await self._stop(pod, kill.container_id, _grace(pod))
        if actions.kill_all:
            for info in state.running():
                await self._stop(pod, info.id, KILL_ALL_TIMEOUT)
        if actions.create_sandbox:
            return await self._create_sandbox(pod, state, actions.sandbox_attempt, waiting,
                                              made)
        if not actions.start:
            return bool(actions.kill)
        sandbox = state.sandbox
        assert sandbox is not None
        for start in actions.start:
            await self._start(pod, sandbox, start, waiting, made)
        return bool(actions.kill)

    async def _create_sandbox(
        self, pod: dict[str, Any], state: PodRuntimeState, attempt: int,
        waiting: dict[str, tuple[str, str]], made: list[str],
    ) -> bool:
        for old in state.sandboxes:
            await self._remove(old.id)
        try:
            await self.volumes.prepare(pod)
        except VolumeError as e:
            self.events.record(pod, "Warning", e.reason, e.message)
            for c in _all_containers(pod):
                waiting[c["name"]] = ("ContainerCreating", e.message)
            return False
        if attempt > 0:
            self.events.record(pod, "Normal", "SandboxChanged",
                               "Pod sandbox changed, it will be killed and re-created.")
        try:
            trace.mark(pod, "sandbox")
            sandbox_id = await self.runtime.create(sandbox_spec(self._context(pod), attempt))
            made.append(sandbox_id)
            await self.runtime.start(sandbox_id)
            trace.mark(pod, "sandbox_up")
        except (PodSpecError, RuntimeFailure) as e:
            message = f"Failed to create pod sandbox: {e}"
            self.events.record(pod, "Warning", "FailedCreatePodSandBox", message)
            for c in _all_containers(pod):
                waiting[c["name"]] = ("ContainerCreating", message)
            return False
        return True

    def _pod_ip(self, pod: dict[str, Any], state: PodRuntimeState) -> str | None:
        return pod_ip(pod, state.sandbox, self.config.host_ip)

    def _context(self, pod: dict[str, Any]) -> PodContext:
        return PodContext(self.config.instance, pod, self.config.network, self.config.pause_image)

    async def _start(
        self, pod: dict[str, Any], sandbox: ContainerInfo, start: Start,
        waiting: dict[str, tuple[str, str]], made: list[str],
    ) -> None:
        container = _container(pod, start.name, init=start.init)
        why = await self.images.ensure(pod, container)
        if why is None:
            why = await self._create_and_start(pod, sandbox, container, start, made)
        if why is not None:
            waiting[start.name] = why

    async def _create_and_start(
        self, pod: dict[str, Any], sandbox: ContainerInfo, container: dict[str, Any],
        start: Start, made: list[str],
    ) -> tuple[str, str] | None:
        name = container["name"]
        try:
            env = container_env(pod, container, configmaps=self.configmaps,
                                secrets=self.secrets,
                                pod_ip=pod_ip(pod, sandbox, self.config.host_ip) or "",
                                host_ip=self.config.host_ip)
            mounts = await self.volumes.mounts(pod, container)
        except (ConfigError, VolumeError) as e:
            message = str(e)
            self.events.record(pod, "Warning", "Failed", f"Error: {message}")
            return "CreateContainerConfigError", message
        spec = container_spec(self._context(pod), container, sandbox_id=sandbox.id,
                              restart_count=start.restart_count, env=env, mounts=mounts)
        key = backoff_key(pod["metadata"]["uid"], name)
        if start.retry:
            self.backoff.next(key)
        try:
            trace.mark(pod, "app")
            container_id = await self.runtime.create(spec)
        except RuntimeFailure as e:
            self._failed_creates[key] = self.clock.wall()
            self.images.invalidate(container["image"])
            self.events.record(pod, "Warning", "Failed", f"Error: {e}")
            return "CreateContainerError", str(e)
        made.append(container_id)
        self._failed_creates.pop(key, None)
        self.events.record(pod, "Normal", "Created", f"Created container: {name}")
        if start.restart_count > 0:
            self.metrics.count_restart(pod, name)
        try:
            await self.runtime.start(container_id)
        except RuntimeFailure as e:
            message = start_failure_message(container, str(e))
            self.events.record(pod, "Warning", "Failed", f"Error: {message}")
            return "RunContainerError", message
        trace.mark(pod, "app_up")
        self.events.record(pod, "Normal", "Started", f"Started container {name}")
        await self._post_start(pod, container, container_id, sandbox)
        return None

    async def _post_start(self, pod: dict[str, Any], container: dict[str, Any],
                          container_id: str, sandbox: ContainerInfo) -> None:
        if not (container.get("lifecycle") or {}).get("postStart"):
            return
        ok = await hooks.post_start(self.runtime, pod, container, container_id,
                                    pod_ip=pod_ip(pod, sandbox, self.config.host_ip),
                                    events=self.events)
        if not ok:
            await self._stop(pod, container_id, _grace(pod))

    async def _stop(self, pod: dict[str, Any] | None, container_id: str, grace: float) -> None:
        with contextlib.suppress(ContainerNotFound):
            await self.runtime.stop(container_id, timeout=max(0.0, grace))

    async def _remove(self, container_id: str) -> None:
        with contextlib.suppress(ContainerNotFound):
            await self.runtime.remove(container_id, force=True)

    async def _stop_sandbox(self, state: PodRuntimeState) -> None:
        sandbox = state.sandbox
        if sandbox is not None and sandbox.state == "running":
            await self._stop(None, sandbox.id, 0)

    async def terminate(self, pod: dict[str, Any]) -> None:
        """Graceful deletion: preStop, SIGTERM, wait what is left of the grace, SIGKILL.

        Done once the pod object is deleted (or already gone or replaced);
        a failed delete is retried.
        """
        uid = pod["metadata"]["uid"]
        state = await self.state(uid)
        deadline = meta.parse_time(pod["metadata"].get("deletionTimestamp"))
        grace = max(0.0, (deadline - self.clock.wall()).total_seconds()) if deadline else 0.0
        self.probes.remove(uid)
        apps = [c for c in state.running() if c.id != (state.sandbox.id if state.sandbox else "")]
        if apps:
            names = ", ".join(sorted({c.labels.get(labels.CONTAINER_NAME, "") for c in apps}))
            self.events.record(pod, "Normal", "Killing", f"Stopping container {names}")
        await asyncio.gather(*(self._terminate_container(pod, state, c, grace) for c in apps))
        await self.remove_pod(uid)
        try:
            await self.client.delete(PODS, pod["metadata"].get("namespace"),
                                     pod["metadata"]["name"], grace_period_seconds=0, uid=uid)
        except errors.ApiError as e:
            if e.code not in (404, 409):
                log.warning("deleting pod %s/%s failed (%s); retrying",
                            pod["metadata"].get("namespace"), pod["metadata"]["name"], e)
                raise Requeue("the delete failed", after=WRITE_RETRY) from e

    async def _terminate_container(self, pod: dict[str, Any], state: PodRuntimeState,
                                   info: ContainerInfo, grace: float) -> None:
        name = info.labels.get(labels.CONTAINER_NAME, "")
        container = next((c for c in _all_containers(pod) if c["name"] == name), None)
        if container is not None and (container.get("lifecycle") or {}).get("preStop"):
            left = await hooks.pre_stop(self.runtime, pod, container, info.id,
                                        pod_ip=self._pod_ip(pod, state), events=self.events,
                                        grace=grace)
            grace = max(left, hooks.MIN_STOP_GRACE)
        await self._stop(pod, info.id, grace)

    async def remove_pod(self, uid: str) -> None:
        """Remove every container of a pod, its sandbox last, and its volumes."""
        state = await self.state(uid)
        sandbox_ids = {s.id for s in state.sandboxes}
        for info in state.all():
            if info.id not in sandbox_ids:
                await self._remove(info.id)
        for sandbox_id in sandbox_ids:
            await self._remove(sandbox_id)
        self.probes.remove(uid)
        self.metrics.forget(uid)
        self.images.forget(uid)
        self.backoff.forget_prefix(backoff_key(uid, ""))
        for key in [k for k in self._failed_creates if k.startswith(backoff_key(uid, ""))]:
            del self._failed_creates[key]
        self._started.discard(uid)
        self.states.forget(uid)
        await self.volumes.cleanup(uid)
        self.on_settled(uid, None)

    def _observe_start(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self._started or not _all_started(status):
            return
        self._started.add(uid)
        created = meta.parse_time(pod["metadata"].get("creationTimestamp"))
        if created is not None:
            self.metrics.pod_start.observe(max(0.0, (self.clock.wall() - created).total_seconds()))

    async def _write_status(self, uid: str, state: PodRuntimeState,
                            waiting: dict[str, tuple[str, str]]) -> bool:
        """Write the status of the pod as the cache holds it now; False when it must be retried.

        The sync may have taken long (an image pull): the snapshot it started
        with can be stale, so the pod is read again right before writing.
        """
        pod = self.pod_by_uid(uid)
        if pod is None or pod["metadata"].get("uid") != uid:
            return True
        status = pod_status(pod, state, waiting=waiting, probes=self.probes.view(uid),
                            host_ip=self.config.host_ip, now=self.clock.wall())
        self._observe_start(pod, status)
        current = pod.get("status") or {}
        if status == current:
            return True
        patch = {**{k: None for k in current if k not in status}, **status}
        md = pod["metadata"]
        try:
            trace.mark(pod, "status")
            await self.client.patch(PODS, md.get("namespace"), md["name"], {"status": patch},
                                    subresource="status")
            trace.mark(pod, "status_written")
        except errors.ApiError as e:
            if e.code == 404:
                return True
            log.warning("writing the status of pod %s/%s failed (%s); retrying",
                        md.get("namespace"), md["name"], e)
            return False
        return True


def _all_started(status: dict[str, Any]) -> bool:
    statuses = status.get("containerStatuses") or []
    return bool(statuses) and all("running" in s["state"] for s in statuses)


def _grace(pod: dict[str, Any]) -> float:
    grace = pod.get("spec", {}).get("terminationGracePeriodSeconds")
    return 30.0 if grace is None else float(grace)


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec", {})
    return [*(spec.get("initContainers") or []), *spec.get("containers", [])]


def _container(pod: dict[str, Any], name: str, *, init: bool) -> dict[str, Any]:
    key = "initContainers" if init else "containers"
    return next(c for c in pod["spec"].get(key) or [] if c["name"] == name)


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
