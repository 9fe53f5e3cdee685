"""The scheduler: binds each unscheduled pod to a node that fits it.

Informers cache all pods and all nodes; pods that need a node (unbound,
`spec.schedulerName` ours, not deleted, not finished) are put on a work
queue by key. One worker (`run_workers`) syncs them one at a time, so that
every decision sees the previous one: it filters the nodes with
`fit.fit_failures`, picks the feasible node with the most CPU left, and
binds the pod there.

The decision is made in memory and the pod is "assumed" on its node at
once: it counts against the node until the informer sees it bound, so a
burst of pods never overcommits a node between a bind and its watch event.
The Binding itself is POSTed by a task of its own (kube-scheduler's
binding cycle), so the next decision does not wait for the store's write
(a few ms with its fsync): of twenty pods created together the median
one was bound 110-190 ms after its create when they were bound one after
another, 70-120 ms now (`bench/pod_startup.py`). A bind that fails
forgets the assumption and sends the pod back to the queue after a
back-off of its own: the sync that placed the pod returned normally, which
made the queue forget the key's back-off, so the binding cycle counts its
failures itself (kube-scheduler's per-pod attempts) until the pod is bound
or gone.

A pod that fits nowhere gets `PodScheduled=False` (reason `Unschedulable`,
with kube-scheduler's `0/N nodes are available: ...` message) on its status
and a `FailedScheduling` event, and its sync raises `Requeue()`: it is
retried with the queue's per-key back-off. Changes that can make room send
every unschedulable pod back to the queue at once: a node added or changed
in readiness, labels, taints or allocatable, a pod deleted or finished; a
claim created, changed or deleted sends back the waiting pods that use it,
a PV or a StorageClass the waiting pods that use any claim.

Volumes (`volumes`, `volumebinder`): a pod's claims are checked before the
nodes (a missing, deleting or unbound `Immediate` claim refuses every node,
in kube-scheduler's words), then on each node that fits otherwise (a bound
PV's node affinity, a `ReadWriteOncePod` claim in use, and whether each
`WaitForFirstConsumer` claim can get a PV there). A pod whose delayed claims
need binding stays assumed on its node while its binding task writes them
(PreBind) and waits for the PV controller to bind them; only then is the pod
bound. kube-scheduler's ReadWriteOncePod message does not say which claim
is in use; minik's adds `persistentvolumeclaim "x" is in use by another
pod.` after it, where kube-scheduler would put its preemption message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from minik.api.errors import ApiError
from minik.api.meta import (
    format_time,
    is_node_ready,
    is_pod_terminal,
    meta_of,
    name_of,
    pod_condition,
    transition_time,
)
from minik.api.objects import Binding, ConditionStatus, JsonObject, Node, Pod
from minik.api.resources import NODES, PODS
from minik.api.volumes import claim_keys, claims_of
from minik.client.aio import AsyncClient
from minik.client.paths import object_path
from minik.machinery.backoff import Backoff
from minik.machinery.clock import Clock, LoopClock
from minik.machinery.events import EventRecorder
from minik.machinery.informer import Informer, key_of
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers
from minik.scheduler import fit, volumes
from minik.scheduler.volumebinder import BIND_TIMEOUT, VolumeBinder, VolumeBindingError
from minik.scheduler.volumes import VolumePlan

log = logging.getLogger(__name__)

NODE_INDEX = "nodeName"
CLAIM_INDEX = "claims"
DEFAULT_RESYNC = 300.0
RETRY_BASE = 1.0
RETRY_MAX = 60.0



@dataclass(frozen=True, slots=True)
class Assumed:
    """A pod this scheduler bound whose binding the informer has not shown yet."""

    pod: Pod
    node: str
    volumes: VolumePlan = field(default_factory=VolumePlan)


def node_name_index(pod: Pod) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def node_fingerprint(node: Node) -> tuple[object, ...]:
    """What about a node can change where pods fit."""
    spec = node.get("spec") or {}
    return (is_node_ready(node), bool(spec.get("unschedulable")), meta_of(node).get("labels"),
            spec.get("taints"), (node.get("status") or {}).get("allocatable"))


def scheduling_inputs(pod: Pod) -> tuple[object, ...]:
    """What about a pending pod can change where it fits."""
    return (pod.get("spec"), meta_of(pod).get("labels"))


def binding_for(pod: Pod, node: str) -> Binding:
    md = meta_of(pod)
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md.get("namespace", ""),
                         "uid": md.get("uid", "")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


class Scheduler:
    """Watches pods and nodes and binds pending pods to nodes that fit them."""

    def __init__(
        self, client: AsyncClient, *, events: EventRecorder,
        metrics: ControllerMetrics | None = None, name: str = fit.DEFAULT_SCHEDULER,
        resync_period: float = DEFAULT_RESYNC, retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX, clock: Clock | None = None,
        bind_timeout: float = BIND_TIMEOUT,
    ) -> None:
        self.client = client
        self.clock: Clock = clock or LoopClock()
        self.events = events
        self.metrics = metrics
        self.name = name
        self.resync_period = resync_period
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.bind_timeout = bind_timeout
        self._reset()

    def _reset(self) -> None:
        """Fresh caches and queue: a (re)started scheduler trusts only list+watch."""
        self.pods: Informer[Pod] = Informer(self.client, PODS,
                                            resync_period=self.resync_period, clock=self.clock)
        self.nodes: Informer[Node] = Informer(self.client, NODES,
                                              resync_period=self.resync_period, clock=self.clock)
        self.pods.add_index(NODE_INDEX, node_name_index)
        self.pods.add_index(CLAIM_INDEX, claim_keys)
        self.volumes = VolumeBinder(self.client, clock=self.clock,
                                    resync_period=self.resync_period,
                                    on_claim=self._claim_changed,
                                    on_volume=self._volumes_changed,
                                    bind_timeout=self.bind_timeout)
        self.queue = WorkQueue(self.name, metrics=self.metrics, base_delay=self.retry_base,
                               max_delay=self.retry_max, clock=self.clock)
        self._assumed: dict[str, Assumed] = {}
        self._bind_backoff = Backoff(base=self.retry_base, cap=self.retry_max, clock=self.clock)
        self._unschedulable: set[str] = set()
        self._bindings: set[asyncio.Task[None]] = set()
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated)

    async def run(self) -> None:
        """Watch and schedule until cancelled."""
        self._reset()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.pods.run(), name=f"{self.name}:pods")
                tasks.create_task(self.nodes.run(), name=f"{self.name}:nodes")
                for informer in self.volumes.informers:
                    tasks.create_task(informer.run(), name=f"{self.name}:{informer.name}")
                await self.pods.wait_synced()
                await self.nodes.wait_synced()
                for informer in self.volumes.informers:
                    await informer.wait_synced()
                tasks.create_task(run_workers(self.queue, self.sync, metrics=self.metrics),
                                  name=f"{self.name}:workers")
        finally:
            self.queue.shutdown()
            for task in self._bindings:
                task.cancel()

    @property
    def unschedulable(self) -> frozenset[str]:
        """Keys of pods that fitted no node on their last attempt."""
        return frozenset(self._unschedulable)

    def _pod_added(self, pod: Pod) -> None:
        if fit.needs_scheduling(pod, self.name):
            self.queue.add(key_of(pod))
        elif node_name_index(pod):
            self._assumed.pop(key_of(pod), None)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        key = key_of(new)
        if node_name_index(new):
            self._assumed.pop(key, None)
            self._bind_backoff.reset(key)
            self._unschedulable.discard(key)
        if fit.needs_scheduling(new, self.name) and (
            old is new or not fit.needs_scheduling(old, self.name)
            or scheduling_inputs(old) != scheduling_inputs(new)
        ):
            self.queue.add(key)
        if node_name_index(new) and is_pod_terminal(new) and not is_pod_terminal(old):
            self._retry_unschedulable()

    def _pod_deleted(self, pod: Pod) -> None:
        key = key_of(pod)
        self._unschedulable.discard(key)
        self._bind_backoff.reset(key)
        assumed = self._assumed.pop(key, None)
        self.volumes.forget(key)
        if assumed is not None or (node_name_index(pod) and not is_pod_terminal(pod)):
            self._retry_unschedulable()

    def _node_added(self, node: Node) -> None:
        self._retry_unschedulable()

    def _node_updated(self, old: Node, new: Node) -> None:
        if old is new or node_fingerprint(old) != node_fingerprint(new):
            self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        for key in sorted(self._unschedulable):
            self.queue.add(key)

    def _claim_changed(self, claim_key: str) -> None:
        """A claim was created, changed or deleted: retry the waiting pods that use it."""
        for key in self.pods.indexer.index_keys(CLAIM_INDEX, claim_key):
            if key in self._unschedulable:
                self.queue.add(key)

    def _volumes_changed(self) -> None:
        """A PV or a class changed: retry the waiting pods that use claims."""
        for key in sorted(self._unschedulable):
            pod = self.pods.indexer.get(key)
            if pod is not None and claims_of(pod):
                self.queue.add(key)

    def _start_binding(self, key: str, assumed: Assumed) -> None:
        task = asyncio.create_task(self._binding(key, assumed), name=f"{self.name}:bind:{key}")
        self._bindings.add(task)
        task.add_done_callback(self._bindings.discard)

    async def _binding(self, key: str, assumed: Assumed) -> None:
        """Bind an assumed pod; a failed bind sends it back to the queue after the pod's
        bind back-off, which grows with each failure until the pod is bound or gone."""
        try:
            if not assumed.volumes.empty:
                await self._bind_volumes(key, assumed)
            await self._bind(assumed.pod, assumed.node)
        except VolumeBindingError as e:
            self._assumed.pop(key, None)
            log.info("%s: binding the volumes of %s failed: %s", self.name, key, e)
            if key in self.pods.indexer:
                await self._refuse(assumed.pod, f'running PreBind plugin "VolumeBinding": {e}',
                                   reason="SchedulerError")
            self.queue.add_after(key, self._bind_backoff.next(key))
        except Exception as e:
            self._assumed.pop(key, None)
            self._log_failure(key, e)
            self.queue.add_after(key, self._bind_backoff.next(key))

    async def _bind_volumes(self, key: str, assumed: Assumed) -> None:
        node = self.nodes.indexer.get(assumed.node)
        if node is None:
            raise VolumeBindingError(f'node "{assumed.node}" not found')
        await self.volumes.bind(assumed.pod, node, assumed.volumes)

    def _log_failure(self, key: str, error: Exception) -> None:
        if isinstance(error, ApiError | ConnectionError):
            log.warning("%s: binding %s failed: %s", self.name, key, error)
        else:
            log.error("%s: binding %s failed", self.name, key, exc_info=error)

    async def sync(self, key: str) -> None:
        """Place the pod `key` and assume it there, to be bound by a task of its own;
        `Requeue` when it fits no node."""
        pod = self.pods.indexer.get(key)
        if pod is None or key in self._assumed or not fit.needs_scheduling(pod, self.name):
            self._unschedulable.discard(key)
            return
        node, message, plan = self.place(pod)
        if node is None:
            self._unschedulable.add(key)
            await self._refuse(pod, message)
            raise Requeue("unschedulable")
        self._unschedulable.discard(key)
        assumed = self._assumed[key] = Assumed(pod, node, plan)
        self.volumes.assume(key, plan)
        self._start_binding(key, assumed)

    def place(self, pod: Pod) -> tuple[str | None, str, VolumePlan]:
        """The best node for `pod` and what binding its volumes there takes, or None and
        the reason nothing fits."""
        nodes = self.nodes.indexer.list()
        claims = volumes.pod_claims(pod, self.volumes)
        if claims.problem is not None and nodes:
            return None, f"0/{len(nodes)} nodes are available: {claims.problem}.", VolumePlan()
        in_use = volumes.read_write_once_pod_conflicts(pod, self.volumes, self._claim_users(pod))
        failures: dict[str, list[str]] = {}
        best: tuple[tuple[int, int], str, VolumePlan] | None = None
        for node in nodes:
            name = name_of(node)
            usage = self.usage(name)
            reasons = fit.fit_failures(pod, node, usage)
            plan = VolumePlan()
            if not reasons and in_use:
                reasons = [volumes.RWOP_CONFLICT]
            if not reasons and claims.any:
                reasons, plan = volumes.find_volumes(claims, node, self.volumes,
                                                     self.volumes.taken(key_of(pod)))
            if reasons:
                failures[name] = reasons
                continue
            points = fit.score(pod, node, usage)
            if best is None or points > best[0]:
                best = (points, name, plan)
        if best is not None:
            return best[1], "", best[2]
        message = fit.fit_error_message(len(nodes), failures)
        if in_use and any(volumes.RWOP_CONFLICT in r for r in failures.values()):
            message += "".join(f' persistentvolumeclaim "{claim}" is in use by another pod.'
                               for claim in in_use)
        return None, message, VolumePlan()

    def _claim_users(self, pod: Pod) -> list[tuple[str, Pod]]:
        """`(namespace/claim, pod)` for the pods placed (bound or assumed), not finished,
        that use one of `pod`'s claims."""
        users = []
        for claim_key in claim_keys(pod):
            for other in self.pods.indexer.by_index(CLAIM_INDEX, claim_key):
                placed = node_name_index(other) or key_of(other) in self._assumed
                if placed and not is_pod_terminal(other):
                    users.append((claim_key, other))
        return users

    def usage(self, node: str) -> fit.NodeUsage:
        """What the node's pods take, counting pods bound here but not yet seen bound."""
        usage = fit.NodeUsage()
        seen = set()
        for pod in self.pods.indexer.by_index(NODE_INDEX, node):
            seen.add(key_of(pod))
            if not is_pod_terminal(pod):
                usage.add(pod)
        for key, assumed in self._assumed.items():
            if assumed.node == node and key not in seen:
                usage.add(assumed.pod)
        return usage

    async def _bind(self, pod: Pod, node: str) -> None:
        key, md = key_of(pod), meta_of(pod)
        path = object_path(PODS, md.get("namespace"), md["name"], "binding")
        try:
            await self.client.request("POST", path, body=binding_for(pod, node))
        except ApiError as e:
            self._assumed.pop(key, None)
            if e.code not in (404, 409):
                raise
            log.info("%s: not binding %s: %s", self.name, key, e)
            return
        except BaseException:
            self._assumed.pop(key, None)
            raise
        self.events.record(pod, "Normal", "Scheduled",
                           f"Successfully assigned {key} to {node}")
        scheduled = pod_condition(pod, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False":
            await self._set_scheduled(pod, "True", None, None)

    async def _refuse(self, pod: Pod, message: str, *, reason: str = "Unschedulable") -> None:
        log.info("%s: %s is unschedulable: %s", self.name, key_of(pod), message)
        self.events.record(pod, "Warning", "FailedScheduling", message)
        current = pod_condition(pod, "PodScheduled")
        shown = (None, None, None) if current is None else (
            current.get("status"), current.get("reason"), current.get("message"))
        if shown != ("False", reason, message):
            await self._set_scheduled(pod, "False", reason, message)

    async def _set_scheduled(
        self, pod: Pod, status: ConditionStatus, reason: str | None, message: str | None
    ) -> None:
        """Strategic-merge the PodScheduled condition into the pod's status.

        A null reason or message removes the one the pod had.
        """
        stamp = format_time(self.clock.wall())
        condition: JsonObject = {
            "type": "PodScheduled", "status": status, "reason": reason, "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": transition_time(pod_condition(pod, "PodScheduled"), status,
                                                  stamp),
        }
        md = meta_of(pod)
        patch = {"status": {"conditions": [condition]}}
        try:
            await self.client.patch(PODS, md.get("namespace"), md["name"], patch,
                                    patch_type="strategic", subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
