"""Writing a pod's status after its sync, as the kubelet's status manager does.

The status is computed (`agent.status.pod_status`) from the pod as the
cache holds it right before writing, not from the snapshot the sync began
with, which a long sync (an image pull) may have left stale; it is patched
through the `status` subresource only when it changed, with a null for
each field the new status drops. A pod gone or replaced meanwhile needs no
write. The first status in which every container runs feeds the pod
start-up latency metric, once per pod.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent import trace
from agent.metrics import AgentMetrics
from agent.podstate import PodRuntimeState
from agent.probes import ProbeManager
from agent.status import final_phase, pod_status
from minik.api import errors
from minik.api.meta import created_at, name_of, namespace_of, uid_of
from minik.api.objects import Pod, PodStatus
from minik.api.resources import REGISTRY
from minik.client.aio import AsyncClient
from minik.machinery.clock import Clock

log = logging.getLogger(__name__)

PODS = REGISTRY.get("pods")

PodByUid = Callable[[str], Pod | None]
"""The pod with this uid as the agent's informer holds it now, or None."""


class StatusWriter:
    """Reports what a sync left each pod in as its status."""

    def __init__(self, *, client: AsyncClient, pod_by_uid: PodByUid, probes: ProbeManager,
                 metrics: AgentMetrics, host_ip: str, clock: Clock) -> None:
        self.client = client
        self.pod_by_uid = pod_by_uid
        self.probes = probes
        self.metrics = metrics
        self.host_ip = host_ip
        self.clock = clock
        self._started: set[str] = set()

    async def write(self, uid: str, state: PodRuntimeState,
                    waiting: dict[str, tuple[str, str]], *, final: bool = False) -> bool:
        """Write the status of the pod as the cache holds it now; False when it must be retried.

        `final`: the pod is deleted and its containers stopped, so its phase is terminal.
        """
        pod = self.pod_by_uid(uid)
        if pod is None or uid_of(pod) != uid:
            return True
        status = pod_status(pod, state, waiting=waiting, probes=self.probes.view(uid),
                            host_ip=self.host_ip, now=self.clock.wall())
        if final:
            status["phase"] = final_phase(status)
        self._observe_start(pod, status)
        current = pod.get("status") or {}
        if status == current:
            return True
        patch = {**{k: None for k in current if k not in status}, **status}
        namespace, name = namespace_of(pod), name_of(pod)
        try:
            trace.mark(pod, "status")
            await self.client.patch(PODS, namespace, name, {"status": patch},
                                    subresource="status")
            trace.mark(pod, "status_written")
        except errors.ApiError as e:
            if e.code == 404:
                return True
            log.warning("writing the status of pod %s/%s failed (%s); retrying",
                        namespace, name, e)
            return False
        return True

    def forget(self, uid: str) -> None:
        self._started.discard(uid)

    def _observe_start(self, pod: Pod, status: PodStatus) -> None:
        uid = uid_of(pod)
        if uid in self._started or not _all_started(status):
            return
        self._started.add(uid)
        created = created_at(pod)
        if created is not None:
            self.metrics.pod_start.observe(max(0.0, (self.clock.wall() - created).total_seconds()))


def _all_started(status: PodStatus) -> bool:
    statuses = status.get("containerStatuses") or []
    return bool(statuses) and all("running" in s["state"] for s in statuses)
