"""The DaemonSet controller: one pod per eligible node, rolled by its update strategy.

Shaped like Kubernetes' `DaemonSetsController` on minik's machinery.
Handlers on the shared informers of DaemonSets, pods and nodes compute
keys only: a pod maps to the DaemonSet named by its controller reference
(and tells the `ControllerExpectations` about its creation or deletion), an
orphan to every DaemonSet whose selector matches it
(`minik.controllers.podevents`); a node that appears, goes, or changes labels, taints
or schedulability enqueues every DaemonSet, since it may change where they
run.

`sync(key)`, once every create and delete it issued has been seen, reads
the DaemonSet's revisions (`RevisionControl`, shared with the StatefulSet
controller: the update revision's `controller-revision-hash` label is the
same label on the pods it makes, and duplicates of it are deleted), groups
its pods by the node they are for (those being deleted too, unless already
finished: a node whose pod is still terminating gets no new one yet), and
manages them (`manage`: missing pods created, failed, excess and misplaced
ones deleted, a failed pod's node backing off from 1 s doubling to 15 min
as Kubernetes' `failedPodsBackoff`); pods for nodes that no longer exist
are deleted too (Kubernetes leaves scheduled ones to the pod GC). When
manage changed nothing, the RollingUpdate strategy deletes old pods or
surges new ones (`update`); OnDelete leaves old pods until someone deletes
them. Then the history beyond `revisionHistoryLimit` that no pod uses is
deleted and the status is written when it changed (`observedGeneration`
with it); a ready pod not yet available after `minReadySeconds` brings a
requeue for when it is. A pod is up to date when its hash is the update
revision's (Kubernetes also accepts a `pod-template-generation` equal to
the `deprecated.daemonset.template.generation` annotation, which minik's
API server does not set).

Pods and revisions are claimed as Kubernetes does: orphans the selector
matches are adopted (after a fresh read shows the DaemonSet is still the
same one and not being deleted), owned pods whose labels stopped matching
are released.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections import defaultdict

from minik.api.errors import ApiError
from minik.api.meta import (
    controller_of,
    is_being_deleted,
    is_pod_terminal,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    new_controller_ref,
    uid_of,
)
from minik.api.objects import (
    ControllerRevision,
    DaemonSet,
    DaemonSetSpec,
    Node,
    Pod,
    PodTemplateSpec,
)
from minik.api.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.daemonset.manage import node_needs
from minik.controllers.daemonset.nodes import placement, target_node, template_for_node
from minik.controllers.daemonset.status import daemon_set_status
from minik.controllers.daemonset.update import (
    allows_surge,
    by_creation_and_phase,
    limits,
    rolling_update,
    surge_update,
)
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.history import DAEMONSET, POD_REVISION_LABEL
from minik.controllers.podcontrol import (
    PodControl,
    check_can_adopt,
    claim_pods,
    owner_key,
    requeue_for_availability,
)
from minik.controllers.podevents import PodEvents
from minik.controllers.revisioncontrol import RevisionControl, Revisions
from minik.machinery.backoff import Backoff
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
FAILED_BACKOFF_BASE, FAILED_BACKOFF_CAP = 1.0, 900.0
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
"""The DaemonSet's generation when it made the pod (deprecated, yet still set by Kubernetes)."""


def _spec(ds: DaemonSet) -> DaemonSetSpec:
    return ds.get("spec") or {}


def _strategy(ds: DaemonSet) -> str:
    return str((_spec(ds).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def _min_ready(ds: DaemonSet) -> int:
    return int(_spec(ds).get("minReadySeconds") or 0)


def _selector(ds: DaemonSet) -> LabelSelector | None:
    try:
        selector = LabelSelector.from_spec(_spec(ds).get("selector"))
    except (ApiError, ValueError) as e:
        log.warning("DaemonSet %s has an invalid selector: %s", key_of(ds), e)
        return None
    return None if selector.empty else selector


def _node_changed(old: Node, new: Node) -> bool:
    return labels_of(old) != labels_of(new) or (old.get("spec") or {}) != (new.get("spec") or {})


class DaemonSetController:
    """Keeps one pod of every DaemonSet on each node that should run it."""

    name = "daemonset"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.events = ctx.events
        self.clock = ctx.clock
        self.workers = workers
        self.expectations = ControllerExpectations(clock=ctx.clock)
        self.sets: Informer[DaemonSet] = ctx.informers.get(DAEMONSETS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.nodes: Informer[Node] = ctx.informers.get(NODES)
        self.revisions: Informer[ControllerRevision] = ctx.informers.get(CONTROLLERREVISIONS)
        self.pod_control = PodControl(ctx.client, ctx.events)
        self.failed_backoff = Backoff(base=FAILED_BACKOFF_BASE, cap=FAILED_BACKOFF_CAP,
                                      clock=ctx.clock)
        self._failed_at: dict[str, dt.datetime] = {}
        self.revision_control = RevisionControl(ctx.client, self.revisions.indexer,
                                                DAEMONSET)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.sets.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                              self._set_deleted)
        self.pod_events = PodEvents("DaemonSet", self.sets.indexer, self.queue,
                                    self.expectations, selector=_selector)
        self.pods.add_handler(self.pod_events.added, self.pod_events.updated,
                              self.pod_events.deleted)
        self.revisions.add_handler(self._revision_changed,
                                   lambda _old, new: self._revision_changed(new),
                                   self._revision_changed)
        self.nodes.add_handler(lambda _n: self._enqueue_all(), self._node_updated,
                               lambda _n: self._enqueue_all())

    async def run(self) -> None:
        await self.ctx.informers.wait_synced(DAEMONSETS, PODS, NODES, CONTROLLERREVISIONS)
        self._enqueue_all()
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.ctx.metrics)

    # ------------------------------------------------------------ handlers

    def _enqueue(self, ds: DaemonSet) -> None:
        self.queue.add(key_of(ds))

    def _enqueue_all(self) -> None:
        for ds in self.sets.indexer.list():
            self._enqueue(ds)

    def _set_deleted(self, ds: DaemonSet) -> None:
        self.expectations.forget(key_of(ds))
        self.failed_backoff.forget_prefix(f"{uid_of(ds)}/")
        for key in [k for k in self._failed_at if k.startswith(f"{uid_of(ds)}/")]:
            del self._failed_at[key]

    def _revision_changed(self, revision: ControllerRevision) -> None:
        """`addHistory`, `updateHistory`, `deleteHistory`: its owner, or for an orphan every
        DaemonSet that may adopt it."""
        if (key := owner_key(revision, "DaemonSet", self.sets.indexer)) is not None:
            self.queue.add(key)
        elif controller_of(revision) is None:
            self.pod_events.enqueue_selecting(revision)

    def _node_updated(self, old: Node, new: Node) -> None:
        if _node_changed(old, new):
            self._enqueue_all()

    # ---------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        """Reconcile one DaemonSet, unless a create or delete it issued is still unseen."""
        if (cached := self.sets.indexer.get(key)) is None:
            self.expectations.forget(key)
            return
        if not self.expectations.satisfied(key) or is_being_deleted(cached):
            return
        try:
            await self._sync(key, copy.deepcopy(cached))
        except ApiError as e:
            if e.code != 409:
                raise
            raise Requeue(str(e)) from e

    async def _sync(self, key: str, ds: DaemonSet) -> None:
        if (selector := _selector(ds)) is None:
            return
        can_adopt = self._has_orphans(ds, selector) and await self._can_adopt(ds)
        revisions = await self.revision_control.list_owned(ds, selector, can_adopt)
        view = await self.revision_control.for_sync(ds, revisions)
        hash_value = labels_of(view.update).get(DAEMONSET.hash_label, "")
        template = _spec(ds).get("template") or {}
        node_pods = await self._pods_by_node(ds, selector, can_adopt)
        if await self.revision_control.dedup(view, [p for ps in node_pods.values() for p in ps]):
            raise Requeue("duplicate revisions deleted, their pods relabelled")
        changed, backoff = await self._manage(key, ds, node_pods, template, hash_value)
        if not changed and _strategy(ds) == "RollingUpdate":
            await self._roll(key, ds, node_pods, template, hash_value)
        await self._truncate(ds, node_pods, view)
        await self._write_status(ds, node_pods, hash_value, view.collision_count)
        try:
            requeue_for_availability([p for ps in node_pods.values() for p in ps],
                                     _min_ready(ds), self.clock.wall())
        except Requeue as e:
            if backoff is None or (e.after or 0.0) < backoff:
                raise
        if backoff is not None:
            raise Requeue("a failed daemon pod is backing off", after=backoff)

    def _has_orphans(self, ds: DaemonSet, selector: LabelSelector) -> bool:
        """Whether a pod or revision without a controller matches: only then is the fresh
        read that adoption needs worth making."""
        objects = [*self.pods.indexer.list(namespace_of(ds)),
                   *self.revisions.indexer.list(namespace_of(ds))]
        return any(controller_of(o) is None and selector.matches(labels_of(o))
                   for o in objects)

    async def _can_adopt(self, ds: DaemonSet) -> bool:
        try:
            await check_can_adopt(self.client, DAEMONSETS, ds)
        except ApiError as e:
            if e.code in (404, 409):
                return False
            raise
        return True

    async def _pods_by_node(self, ds: DaemonSet, selector: LabelSelector,
                            can_adopt: bool) -> dict[str, list[Pod]]:
        """The DaemonSet's pods (matching orphans adopted when `can_adopt`, owned pods whose
        labels stopped matching released) by the node they are for, in
        `by_creation_and_phase` order; a pod that names no node is left alone, and one
        both finished and being deleted is past caring about (`getNodesToDaemonPods`)."""
        uid = uid_of(ds)
        candidates = [p for p in self.pods.indexer.list(namespace_of(ds))
                      if not (is_being_deleted(p) and is_pod_terminal(p))
                      and (((ref := controller_of(p)) is not None and ref.get("uid") == uid)
                           or (can_adopt and ref is None and not is_being_deleted(p)))]

        async def allowed() -> None:
            return None

        ref = new_controller_ref(ds, api_version="apps/v1", kind="DaemonSet")
        claimed = await claim_pods(self.pod_control, ds, selector, candidates, ref=ref,
                                   can_adopt=allowed)
        by_node: dict[str, list[Pod]] = defaultdict(list)
        for pod in claimed:
            if (node := target_node(pod)) is not None:
                by_node[node].append(pod)
        return {node: by_creation_and_phase(pods) for node, pods in by_node.items()}

    async def _manage(self, key: str, ds: DaemonSet, node_pods: dict[str, list[Pod]],
                      template: PodTemplateSpec, hash_value: str) -> tuple[bool, float | None]:
        """`manage`: create missing pods, delete failed, excess and misplaced ones. Says
        whether it changed anything, and how long until a failed pod's back-off ends."""
        nodes = {name_of(n): n for n in self.nodes.indexer.list()}
        surge, now = allows_surge(ds), self.clock.wall()
        create: list[str] = []
        delete: list[Pod] = []
        waits: list[float] = []
        for name, node in nodes.items():
            needs = node_needs(placement(template, node), node_pods.get(name, []), hash_value,
                               surge=surge, min_ready=_min_ready(ds), now=now)
            create += [name] if needs.create else []
            delete += needs.delete
            if needs.failed and (wait := self._failed_backoff_wait(ds, name)) > 0:
                waits.append(wait)
            else:
                delete += self._failed_observed(ds, name, needs.failed)
        for name, pods in node_pods.items():
            if name not in nodes:
                delete += [p for p in pods if not is_being_deleted(p)]
        await self._sync_nodes(key, ds, delete, create, template, hash_value)
        return bool(create or delete), min(waits, default=None)

    def _failed_backoff_wait(self, ds: DaemonSet, node: str) -> float:
        """Seconds before the node's failed pods may be deleted again (`failedPodsBackoff`)."""
        key = f"{uid_of(ds)}/{node}"
        since = self._failed_at.get(key)
        return 0.0 if since is None else self.failed_backoff.remaining(key, since)

    def _failed_observed(self, ds: DaemonSet, node: str, failed: list[Pod]) -> list[Pod]:
        if not failed:
            return []
        key = f"{uid_of(ds)}/{node}"
        self.failed_backoff.next(key)
        self._failed_at[key] = self.clock.wall()
        for pod in failed:
            self.events.record(ds, "Warning", "FailedDaemonPod",
                               f"Found failed daemon pod {key_of(pod)} on node {node}, "
                               "will try to kill it")
        return failed

    async def _roll(self, key: str, ds: DaemonSet, node_pods: dict[str, list[Pod]],
                    template: PodTemplateSpec, hash_value: str) -> None:
        """`rollingUpdate`, over every node with pods or that should run one."""
        should_run = {name_of(n) for n in self.nodes.indexer.list()
                      if placement(template, n).should_run}
        nodes = {n: node_pods.get(n, []) for n in {*node_pods, *should_run}}
        lim, now = limits(ds, len(should_run)), self.clock.wall()
        if lim.max_surge == 0:
            step = rolling_update(nodes, hash_value, lim, _min_ready(ds), now)
        else:
            step = surge_update(nodes, hash_value, lim, _min_ready(ds), now,
                                should_run=should_run, desired=len(should_run))
        await self._sync_nodes(key, ds, step.delete, step.surge_nodes, template, hash_value)

    async def _sync_nodes(self, key: str, ds: DaemonSet, delete: list[Pod], create: list[str],
                          template: PodTemplateSpec, hash_value: str) -> None:
        """`syncNodes`: the creations and deletions one pass decided, under expectations."""
        self.expectations.expect_creations(key, len(create))
        self.expectations.expect_deletions(key, [key_of(p) for p in delete])
        ref = new_controller_ref(ds, api_version="apps/v1", kind="DaemonSet")
        labelled = copy.deepcopy(template)
        labels = labelled.setdefault("metadata", {}).setdefault("labels", {})
        labels[TEMPLATE_GENERATION_LABEL] = str(meta_of(ds).get("generation") or 0)
        labels[POD_REVISION_LABEL] = hash_value
        error: Exception | None = None
        for node in create:
            try:
                await self.pod_control.create(ds, template_for_node(labelled, node), ref)
            except ApiError as e:
                self.expectations.creation_observed(key)
                error = error or e
        for pod in delete:
            try:
                if not await self.pod_control.delete(ds, pod):
                    self.expectations.deletion_observed(key, key_of(pod))
            except ApiError as e:
                self.expectations.deletion_observed(key, key_of(pod))
                error = error or e
        if error is not None:
            raise error

    async def _write_status(self, ds: DaemonSet, node_pods: dict[str, list[Pod]],
                            hash_value: str, collisions: int | None) -> None:
        """`storeDaemonSetStatus`: the status written when it changed."""
        status = daemon_set_status(ds, self.nodes.indexer.list(), node_pods, hash_value,
                                   collisions, self.clock.wall())
        old = ds.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        md = meta_of(ds)
        try:
            await self.client.replace(DAEMONSETS, md.get("namespace"), md["name"],
                                      {**ds, "status": {**old, **status}}, subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise

    async def _truncate(self, ds: DaemonSet, node_pods: dict[str, list[Pod]],
                        view: Revisions) -> None:
        """`cleanupHistory`: revisions beyond the limit that no pod was made from."""
        await self.revision_control.truncate(ds, [p for ps in node_pods.values() for p in ps],
                                             view)
