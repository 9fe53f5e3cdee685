"""The node agent's Node object and its heartbeat, as the kubelet keeps them.

`NodeStatusReporter` registers the Node (creating it, or adopting one of the
same name by patching our labels onto it), then runs two loops:

- status: every heartbeat interval it computes the Node status (capacity
  and allocatable from `agent.host`, addresses, nodeInfo, the kubelet
  endpoint, conditions) and writes it through the `status` subresource with
  a strategic merge patch, but only when it changed (heartbeat and
  transition times aside) or when `status_interval` has passed since the
  last write. Conditions keep their `lastTransitionTime` until their status
  changes.
- lease: every heartbeat interval it renews a `coordination.k8s.io/v1`
  Lease named after the node in `kube-node-lease` (the cheap heartbeat a
  node lifecycle controller reads), owned by the Node so that it goes with
  it. Renewal is a PUT carrying the resourceVersion last read; a conflict
  re-reads.

Registration that fails (the API server still starting, say) is retried
here with a back-off (`minik.machinery.backoff`, 0.1 s doubling to 7 s),
not left to the supervisor: failing to register is expected at start, so
it is one warning line, not a crash with a traceback, and the first retry
comes sooner than a supervised restart would. A Node deleted while the
agent runs is registered again. Stopping marks nothing: a node lifecycle
controller turns a silent node NotReady.

All time is the agent's `Clock`: its wall time for heartbeat, transition
and renew times, its monotonic time for when the status is due, and its
`sleep` between heartbeats, so tests drive heartbeats on a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from agent import host
from minik.api.errors import ApiError
from minik.api.meta import find_condition, format_time, transition_time, uid_of
from minik.api.objects import JsonObject, Node, NodeCondition, NodeStatus, Quantity
from minik.api.resources import REGISTRY
from minik.client.aio import ApiUnavailable, AsyncClient
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock, sleep

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.33.0-minik"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
MAX_PODS = 110
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
REGISTER_RETRY = 0.1
REGISTER_RETRY_MAX = 7.0

Readiness = Callable[[], str | None]

PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)



NODES = REGISTRY.get("nodes")
LEASES = REGISTRY.get("leases")


def micro_time(moment: dt.datetime) -> str:
    """RFC 3339 with microseconds, as metav1.MicroTime: `2026-11-24T00:00:00.000000Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kibibytes(n: int) -> str:
    return f"{n // 1024}Ki"


def node_labels(node_name: str, arch: str, os_name: str, extra: dict[str, str]) -> dict[str, str]:
    return {"kubernetes.io/hostname": node_name, "kubernetes.io/os": os_name,
            "kubernetes.io/arch": arch, CONTROL_PLANE_LABEL: "", **extra}


def resources_of(facts: host.HostFacts) -> dict[str, Quantity]:
    return {"cpu": str(facts.cpus), "memory": kibibytes(facts.memory_bytes),
            "ephemeral-storage": kibibytes(facts.storage_bytes), "pods": str(MAX_PODS)}


def node_conditions(not_ready: str | None) -> list[NodeCondition]:
    """The kubelet's conditions, without times; `not_ready` says why it is not Ready."""
    conditions: list[NodeCondition] = [
        {"type": kind, "status": "False", "reason": reason, "message": message}
        for kind, reason, message in PRESSURE_CONDITIONS]
    ready: NodeCondition
    if not_ready is None:
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status"}
    else:
        ready = {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                 "message": not_ready}
    return [*conditions, ready]


def node_status(
    facts: host.HostFacts, *, address: str, kubelet_port: int, runtime_version: str,
    not_ready: str | None = None,
) -> NodeStatus:
    """The Node status this host reports, without heartbeat or transition times."""
    return {
        "capacity": resources_of(facts),
        "allocatable": resources_of(facts),
        "addresses": [{"type": "InternalIP", "address": address},
                      {"type": "Hostname", "address": facts.hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": facts.machine_id, "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id, "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image, "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
            "operatingSystem": facts.operating_system,
            "architecture": facts.architecture,
        },
        "conditions": node_conditions(not_ready),
    }


def stamp_conditions(conditions: list[NodeCondition], previous: list[NodeCondition],
                     at: str) -> list[NodeCondition]:
    """Heartbeat every condition; keep lastTransitionTime where the status did not change."""
    stamped: list[NodeCondition] = []
    for condition in conditions:
        since = transition_time(find_condition(previous, condition["type"]),
                                condition["status"], at)
        stamped.append({**condition, "lastHeartbeatTime": at, "lastTransitionTime": since})
    return stamped


def lease_body(node_name: str, node_uid: str | None, renew_time: str) -> JsonObject:
    metadata: JsonObject = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                     "renewTime": renew_time}}


class NodeStatusReporter:
    """Registers this host as a Node and keeps its status and Lease fresh."""

    def __init__(
        self, client: AsyncClient, node_name: str, *, labels: dict[str, str] | None = None,
        address: str = "127.0.0.1", kubelet_port: int = 0,
        runtime_version: str = "docker://unknown", heartbeat_interval: float = 10.0,
        status_interval: float = 60.0, storage_path: str = "/",
        facts: host.HostFacts | None = None, readiness: Readiness | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.extra_labels = dict(labels or {})
        self.address = address
        self.kubelet_port = kubelet_port
        self.runtime_version = runtime_version
        self.heartbeat_interval = heartbeat_interval
        self.status_interval = status_interval
        self.storage_path = storage_path
        self.facts = facts
        self.readiness = readiness
        self.clock: Clock = clock or LoopClock()
        self.node: Node | None = None
        self.lease: JsonObject | None = None
        self.status_writes = 0
        self._reported: NodeStatus | None = None
        self._reported_at = 0.0
        self._conditions: list[NodeCondition] = []

    def host_facts(self) -> host.HostFacts:
        return self.facts or host.gather(self.storage_path)

    async def run(self) -> None:
        """Register, then heartbeat and report status until cancelled."""
        await self._register_until_done()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._every(self.renew_lease, "lease"),
                              name=f"node:{self.node_name}:lease")
            tasks.create_task(self._every(self.sync_status, "status"),
                              name=f"node:{self.node_name}:status")

    async def shutdown(self) -> None:
        """Nothing to undo: the Node stays, and goes NotReady when its Lease expires."""

    async def register(self) -> Node:
        """Create the Node, or adopt the existing one with our labels; then report status."""
        facts = self.host_facts()
        labels = node_labels(self.node_name, facts.architecture, facts.operating_system,
                             self.extra_labels)
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels}, "spec": {}}
        try:
            self.node = cast(Node, await self.client.create(NODES, None, body))
            log.info("registered node %s", self.node_name)
        except ApiError as e:
            if e.code != 409:
                raise
            self.node = cast(Node, await self.client.patch(
                NODES, None, self.node_name, {"metadata": {"labels": labels}}))
            log.info("adopted existing node %s", self.node_name)
        self._reported = None
        self._conditions = list((self.node.get("status") or {}).get("conditions") or [])
        await self.sync_status()
        return self.node

    async def _register_until_done(self) -> None:
        backoff = Backoff(base=REGISTER_RETRY, cap=REGISTER_RETRY_MAX, clock=self.clock)
        while True:
            try:
                await self.register()
                return
            except (ApiError, ApiUnavailable) as e:
                delay = backoff.next()
                log.warning("registering node %s failed: %s; retrying in %.1fs",
                            self.node_name, e, delay)
            await sleep(self.clock, delay)

    async def _every(self, action: Callable[[], Awaitable[object]], what: str) -> None:
        while True:
            try:
                await action()
            except ApiError as e:
                if e.code == 404 and what == "status":
                    log.warning("node %s is gone; registering it again", self.node_name)
                    await self._register_quietly()
                else:
                    log.warning("node %s: %s update failed: %s", self.node_name, what, e)
            except ApiUnavailable as e:
                log.warning("node %s: %s update failed: %s", self.node_name, what, e)
            await sleep(self.clock, self.heartbeat_interval)

    async def _register_quietly(self) -> None:
        try:
            await self.register()
        except (ApiError, ApiUnavailable) as e:
            log.warning("registering node %s failed: %s", self.node_name, e)

    def desired_status(self) -> NodeStatus:
        not_ready = self.readiness() if self.readiness is not None else None
        return node_status(self.host_facts(), address=self.address,
                           kubelet_port=self.kubelet_port, runtime_version=self.runtime_version,
                           not_ready=not_ready)

    async def sync_status(self) -> bool:
        """Write the status if it changed or is due; whether it was written."""
        status = self.desired_status()
        due = self.clock.now() - self._reported_at >= self.status_interval
        if status == self._reported and not due:
            return False
        stamp = format_time(self.clock.wall())
        body: NodeStatus = {
            **status,
            "conditions": stamp_conditions(status["conditions"], self._conditions, stamp)}
        self.node = cast(Node, await self.client.patch(
            NODES, None, self.node_name, {"status": body}, patch_type="strategic",
            subresource="status"))
        self.status_writes += 1
        self._reported, self._reported_at = status, self.clock.now()
        self._conditions = body["conditions"]
        return True

    async def renew_lease(self) -> JsonObject:
        """Create or renew the node's Lease; a conflict or a vanished Lease re-reads it."""
        try:
            self.lease = await self._write_lease()
        except ApiError as e:
            if e.code not in (404, 409):
                raise
            self.lease = None
            self.lease = await self._write_lease()
        return self.lease

    async def _write_lease(self) -> JsonObject:
        renew = micro_time(self.clock.wall())
        node_uid = uid_of(self.node) if self.node is not None else None
        if self.lease is None:
            self.lease = await self._read_lease()
        if self.lease is None:
            return await self.client.create(LEASES, LEASE_NAMESPACE,
                                            lease_body(self.node_name, node_uid, renew))
        lease = copy.deepcopy(self.lease)
        fresh = lease_body(self.node_name, node_uid, renew)
        lease["spec"] = {**(lease.get("spec") or {}), **fresh["spec"]}
        if "ownerReferences" in fresh["metadata"]:
            lease["metadata"]["ownerReferences"] = fresh["metadata"]["ownerReferences"]
        return await self.client.replace(LEASES, LEASE_NAMESPACE, self.node_name, lease)

    async def _read_lease(self) -> JsonObject | None:
        try:
            return await self.client.get(LEASES, LEASE_NAMESPACE, self.node_name)
        except ApiError as e:
            if e.code != 404:
                raise
            return None
