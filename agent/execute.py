"""Carrying out a pod's plan: the second half of the kubelet's SyncPod.

`PlanExecutor.execute` takes what `agent.plan.compute_pod_actions` decided
and does it in order: old attempts removed, containers killed (within the
pod's grace period; all of them in 2 s when the sandbox goes), a new
sandbox created with the pod's volumes prepared first, or the planned init
or app containers started with their image, environment and mounts.

What it could not do it reports as the reasons containers wait, for the
status: `ContainerCreating` when the volumes or the sandbox failed,
`CreateContainerConfigError` for a missing ConfigMap or Secret key,
`CreateContainerError` when the engine would not create a container and
`RunContainerError` when it would not start it. A refused create is
remembered in `FailedCreates`, so that the plan retries it with the same
back-off as a crash. A container whose `postStart` hook fails is stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from agent import hooks, trace
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
from agent.metrics import AgentMetrics
from agent.plan import PodActions, Start, backoff_key
from agent.pod_dns import PodResolvConfs
from agent.podspec import container_named, grace_period, init_and_app_containers
from agent.podstate import PodRuntimeState
from agent.runtime import ContainerInfo, ContainerNotFound, Runtime, RuntimeFailure
from agent.volumes import VolumeError, VolumeManager
from minik.api.meta import uid_of
from minik.api.objects import Container, Pod
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock

KILL_ALL_TIMEOUT = 2.0

Waiting = dict[str, tuple[str, str]]
"""Why containers wait, by name: (reason, message) for their `waiting` state."""


class FailedCreates:
    """When the engine last refused to create each container, by back-off key."""

    def __init__(self) -> None:
        self._at: dict[str, dt.datetime] = {}

    def record(self, key: str, at: dt.datetime) -> None:
        self._at[key] = at

    def clear(self, key: str) -> None:
        self._at.pop(key, None)

    def of(self, uid: str) -> dict[str, dt.datetime]:
        """The pod's refused creates, by container name."""
        prefix = backoff_key(uid, "")
        return {key[len(prefix):]: at for key, at in self._at.items() if key.startswith(prefix)}

    def forget(self, uid: str) -> None:
        for key in [k for k in self._at if k.startswith(backoff_key(uid, ""))]:
            del self._at[key]


async def stop_container(runtime: Runtime, container_id: str, grace: float) -> None:
    """Stop a container within `grace` seconds; one already gone is fine."""
    with contextlib.suppress(ContainerNotFound):
        await runtime.stop(container_id, timeout=max(0.0, grace))


async def remove_container(runtime: Runtime, container_id: str) -> None:
    with contextlib.suppress(ContainerNotFound):
        await runtime.remove(container_id, force=True)


class PlanExecutor:
    """Does what a pod's plan says, against the runtime."""

    def __init__(
        self, *, instance: str, network: str, pause_image: str, host_ip: str, runtime: Runtime,
        events: EventSink, images: ImageManager, volumes: VolumeManager, backoff: Backoff,
        configmaps: Lookup, secrets: Lookup, metrics: AgentMetrics,
        failed_creates: FailedCreates, clock: Clock, resolv_confs: PodResolvConfs | None = None,
        services: Lookup | None = None,
    ) -> None:
        self.services = services
        self.instance = instance
        self.network = network
        self.pause_image = pause_image
        self.host_ip = host_ip
        self.runtime = runtime
        self.events = events
        self.images = images
        self.volumes = volumes
        self.backoff = backoff
        self.configmaps = configmaps
        self.secrets = secrets
        self.metrics = metrics
        self.failed_creates = failed_creates
        self.clock = clock
        self.resolv_confs = resolv_confs

    def pod_ip(self, pod: Pod, state: PodRuntimeState) -> str | None:
        return pod_ip(pod, state.sandbox, self.host_ip)

    async def execute(
        self, pod: Pod, state: PodRuntimeState, actions: PodActions,
        waiting: Waiting, made: list[str],
    ) -> bool:
        """Carry out a plan, noting the containers it creates in `made`; True when the pod
        must be planned again at once."""
        for container_id in actions.remove:
            await remove_container(self.runtime, container_id)
        for kill in actions.kill:
            self.events.record(pod, "Normal", kill.reason, kill.message)
            await stop_container(self.runtime, kill.container_id, grace_period(pod))
        if actions.kill_all:
            for info in state.running():
                await stop_container(self.runtime, info.id, KILL_ALL_TIMEOUT)
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
        self, pod: Pod, state: PodRuntimeState, attempt: int, waiting: Waiting,
        made: list[str],
    ) -> bool:
        for old in state.sandboxes:
            await remove_container(self.runtime, old.id)
        try:
            await self.volumes.prepare(pod)
        except VolumeError as e:
            self.events.record(pod, "Warning", e.reason, e.message)
            for c in init_and_app_containers(pod):
                waiting[c["name"]] = ("ContainerCreating", e.message)
            return False
        if self.resolv_confs is not None:
            try:
                await self.resolv_confs.write(pod)
            except OSError as e:
                message = f"Failed to write the pod's resolv.conf: {e}"
                self.events.record(pod, "Warning", "DNSConfigForming", message)
                for c in init_and_app_containers(pod):
                    waiting[c["name"]] = ("ContainerCreating", message)
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
            for c in init_and_app_containers(pod):
                waiting[c["name"]] = ("ContainerCreating", message)
            return False
        return True

    def _context(self, pod: Pod) -> PodContext:
        resolv_conf = (None if self.resolv_confs is None
                       else str(self.resolv_confs.path(uid_of(pod))))
        return PodContext(self.instance, pod, self.network, self.pause_image, resolv_conf)

    async def _start(
        self, pod: Pod, sandbox: ContainerInfo, start: Start, waiting: Waiting,
        made: list[str],
    ) -> None:
        container = container_named(pod, start.name, init=start.init)
        why = await self.images.ensure(pod, container)
        if why is None:
            why = await self._create_and_start(pod, sandbox, container, start, made)
        if why is not None:
            waiting[start.name] = why

    async def _create_and_start(
        self, pod: Pod, sandbox: ContainerInfo, container: Container,
        start: Start, made: list[str],
    ) -> tuple[str, str] | None:
        name = container["name"]
        try:
            env = container_env(pod, container, configmaps=self.configmaps,
                                secrets=self.secrets,
                                pod_ip=pod_ip(pod, sandbox, self.host_ip) or "",
                                host_ip=self.host_ip, services=self.services)
            mounts = await self.volumes.mounts(pod, container)
            if self.resolv_confs is not None:
                await self.resolv_confs.ensure(pod)
        except (ConfigError, VolumeError, OSError) as e:
            message = str(e)
            self.events.record(pod, "Warning", "Failed", f"Error: {message}")
            return "CreateContainerConfigError", message
        spec = container_spec(self._context(pod), container, sandbox_id=sandbox.id,
                              restart_count=start.restart_count, env=env, mounts=mounts)
        key = backoff_key(uid_of(pod), name)
        if start.retry:
            self.backoff.next(key)
        try:
            trace.mark(pod, "app")
            container_id = await self.runtime.create(spec)
        except RuntimeFailure as e:
            self.failed_creates.record(key, self.clock.wall())
            self.images.invalidate(container["image"])
            self.events.record(pod, "Warning", "Failed", f"Error: {e}")
            return "CreateContainerError", str(e)
        made.append(container_id)
        self.failed_creates.clear(key)
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

    async def _post_start(self, pod: Pod, container: Container,
                          container_id: str, sandbox: ContainerInfo) -> None:
        if not (container.get("lifecycle") or {}).get("postStart"):
            return
        ok = await hooks.post_start(self.runtime, pod, container, container_id,
                                    pod_ip=pod_ip(pod, sandbox, self.host_ip),
                                    events=self.events, clock=self.clock)
        if not ok:
            await stop_container(self.runtime, container_id, grace_period(pod))
