"""The taint-eviction controller: pods leave a node with a `NoExecute` taint they do not tolerate.

Shaped like Kubernetes' `pkg/controller/tainteviction`. For a pod bound to
a node, only the node's `NoExecute` taints count. A pod that does not
tolerate each of them is deleted at once. One that tolerates them all is
deleted after the smallest `tolerationSeconds` among the tolerations used
(0 or less: at once); without any `tolerationSeconds` it stays forever.
The wait is counted from when the controller first saw the pod under
those taints, and a taint removed (or tolerated forever) in the meantime
cancels it, with the event `TaintManagerEviction` "Cancelling deletion of
Pod ns/name".

Handlers queue pod keys: a pod's own changes, and every pod on a node whose
taints changed. `sync(key)` is level-triggered: it recomputes the pod's
deadline from the caches; a deadline in the future is a `Requeue` for that
moment (on the context's clock, so tests drive it with a ManualClock); a
deadline reached posts `TaintManagerEviction` "Marking for deletion Pod
ns/name", sets the pod's condition `DisruptionTarget` (reason
`DeletionByTaintManager`) through its status and deletes it.
"""

from __future__ import annotations

import logging

from minik.api.disruption import disruption_target
from minik.api.errors import ApiError
from minik.api.meta import is_being_deleted, name_of, namespace_of, uid_of
from minik.api.nodeaffinity import tolerates
from minik.api.objects import Node, Pod, Taint, Toleration
from minik.api.resources import NODES, PODS
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
NODE_INDEX = "taint-eviction:nodeName"
REASON = "TaintManagerEviction"
FOREVER = -1.0


def _node_of(pod: Pod) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def no_execute_taints(node: Node | None) -> list[Taint]:
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return [t for t in taints if t.get("effect") == "NoExecute"]


def matching_tolerations(taints: list[Taint],
                         tolerations: list[Toleration]) -> list[Toleration] | None:
    """`GetMatchingTolerations`: the first toleration of each taint; None if one has none."""
    used: list[Toleration] = []
    for taint in taints:
        found = next((t for t in tolerations if tolerates(t, taint)), None)
        if found is None:
            return None
        used.append(found)
    return used


def min_toleration_time(used: list[Toleration]) -> float:
    """`getMinTolerationTime`: seconds until eviction, or FOREVER."""
    if not used:
        return 0.0
    seconds = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not seconds:
        return FOREVER
    return float(max(0, min(seconds)))


def eviction_delay(pod: Pod, node: Node | None) -> float | None:
    """How long the pod may stay on its node: None for no NoExecute taint, FOREVER for a
    pod that tolerates them all forever."""
    taints = no_execute_taints(node)
    if not taints:
        return None
    used = matching_tolerations(taints, (pod.get("spec") or {}).get("tolerations") or [])
    return 0.0 if used is None else min_toleration_time(used)


class TaintEvictionController:
    """Deletes pods from nodes whose NoExecute taints they do not tolerate (for long)."""

    name = "taint-eviction-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.events = ctx.events
        self.nodes: Informer[Node] = ctx.informers.get(NODES)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.pods.add_index(NODE_INDEX, _node_of)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.started: dict[str, float] = {}
        """Pod key -> when the controller first saw it bound to wait under NoExecute taints."""
        self.pods.add_handler(self._pod_changed, lambda _old, new: self._pod_changed(new),
                              self._pod_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated)

    async def run(self) -> None:
        await self.nodes.wait_synced()
        await self.pods.wait_synced()
        await run_workers(self.queue, self.sync, workers=DEFAULT_WORKERS,
                          metrics=self.ctx.metrics)

    def _pod_changed(self, pod: Pod) -> None:
        if _node_of(pod):
            self.queue.add(key_of(pod))

    def _pod_deleted(self, pod: Pod) -> None:
        self.started.pop(key_of(pod), None)

    def _node_changed(self, node: Node) -> None:
        for key in self.pods.indexer.index_keys(NODE_INDEX, name_of(node)):
            self.queue.add(key)

    def _node_updated(self, old: Node, new: Node) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            self._node_changed(new)

    def _cancel(self, key: str, pod: Pod | None) -> None:
        if self.started.pop(key, None) is not None and pod is not None:
            self.events.record(pod, "Normal", REASON, f"Cancelling deletion of Pod {key}")

    async def sync(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is None or is_being_deleted(pod) or not _node_of(pod):
            self._cancel(key, None)
            return
        node = self.nodes.indexer.get(_node_of(pod)[0])
        delay = eviction_delay(pod, node)
        if delay is None or delay == FOREVER:
            self._cancel(key, pod)
            return
        now = self.clock.now()
        due = self.started.setdefault(key, now) + delay
        if due > now:
            raise Requeue("tolerating NoExecute taints for now", after=due - now)
        await self._evict(key, pod)

    async def _evict(self, key: str, pod: Pod) -> None:
        """`addConditionAndDeletePod`, after the event Kubernetes posts."""
        self.events.record(pod, "Normal", REASON, f"Marking for deletion Pod {key}")
        namespace, name = namespace_of(pod), name_of(pod)
        condition = disruption_target("DeletionByTaintManager",
                                      "Taint manager: deleting due to NoExecute taint",
                                      self.clock.wall())
        try:
            await self.client.patch(PODS, namespace, name, {"status": {"conditions": [condition]}},
                                    patch_type="strategic", subresource="status")
            await self.client.delete(PODS, namespace, name, uid=uid_of(pod))
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        self.started.pop(key, None)
