"""Graceful deletion of a pod's containers: preStop, SIGTERM, what is left of the grace, SIGKILL.

A pod marked for deletion has until its `deletionTimestamp` (the API
server set it at the grace period's end). `stop_containers` runs each app
container's `preStop` hook within that time and then stops it with
whatever is left, never less than `hooks.MIN_STOP_GRACE`, all containers
at once, as the kubelet's killPod does. The caller then removes the
containers and `delete_pod` deletes the pod object with grace 0; a delete
that failed is retried (`Requeue`), one that finds the pod gone or
replaced (404, 409) is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent import hooks, labels
from agent.events import EventSink
from agent.execute import stop_container
from agent.podspec import init_and_app_containers
from agent.podstate import PodRuntimeState
from agent.runtime import ContainerInfo, Runtime
from minik.api import errors
from minik.api.meta import meta_of, name_of, namespace_of, parse_time, uid_of
from minik.api.objects import Pod
from minik.api.resources import REGISTRY
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock
from minik.machinery.requeue import Requeue

log = logging.getLogger(__name__)

PODS = REGISTRY.get("pods")
DELETE_RETRY = 1.0

PodIP = Callable[[Pod, PodRuntimeState], str | None]
"""The pod's IP while its sandbox runs, for preStop HTTP hooks."""


class PodTerminator:
    """Stops a deleted pod's containers gracefully and deletes the pod object."""

    def __init__(self, *, runtime: Runtime, client: AsyncClient, events: EventSink,
                 pod_ip: PodIP, clock: Clock) -> None:
        self.runtime = runtime
        self.client = client
        self.events = events
        self.pod_ip = pod_ip
        self.clock = clock

    async def stop_containers(self, pod: Pod, state: PodRuntimeState) -> None:
        """Stop the pod's running app containers within what is left of its grace period."""
        deadline = parse_time(meta_of(pod).get("deletionTimestamp"))
        grace = max(0.0, (deadline - self.clock.wall()).total_seconds()) if deadline else 0.0
        apps = [c for c in state.running() if c.id != (state.sandbox.id if state.sandbox else "")]
        if apps:
            names = ", ".join(sorted({c.labels.get(labels.CONTAINER_NAME, "") for c in apps}))
            self.events.record(pod, "Normal", "Killing", f"Stopping container {names}")
        await asyncio.gather(*(self._stop(pod, state, c, grace) for c in apps))

    async def _stop(self, pod: Pod, state: PodRuntimeState, info: ContainerInfo,
                    grace: float) -> None:
        name = info.labels.get(labels.CONTAINER_NAME, "")
        container = next((c for c in init_and_app_containers(pod) if c["name"] == name), None)
        if container is not None and (container.get("lifecycle") or {}).get("preStop"):
            left = await hooks.pre_stop(self.runtime, pod, container, info.id,
                                        pod_ip=self.pod_ip(pod, state), events=self.events,
                                        grace=grace, clock=self.clock)
            grace = max(left, hooks.MIN_STOP_GRACE)
        await stop_container(self.runtime, info.id, grace)

    async def delete_pod(self, pod: Pod) -> None:
        """Delete the pod object with grace 0, as of its uid; `Requeue` when that failed."""
        namespace, name = namespace_of(pod), name_of(pod)
        try:
            await self.client.delete(PODS, namespace, name, grace_period_seconds=0,
                                     uid=uid_of(pod))
        except errors.ApiError as e:
            if e.code not in (404, 409):
                log.warning("deleting pod %s/%s failed (%s); retrying", namespace, name, e)
                raise Requeue("the delete failed", after=DELETE_RETRY) from e
