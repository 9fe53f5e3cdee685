"""The replica controllers: `spec.replicas` active pods matching a selector, kept.

Shaped like Kubernetes' `pkg/controller/replicaset`. `ReplicaController`
runs one replicated kind (`minik.controllers.replica_kinds`): ReplicaSets
(`replica_set_controller`, Kubernetes' ReplicaSetController) or
ReplicationControllers (`replication_manager`, Kubernetes' ReplicationManager,
which is the same controller behind an adapter). The kinds share their spec
and status fields; below, either kind's object is called `rs`. Event
handlers on the shared informers of the kind and of pods only compute keys
(`minik.controllers.podevents`, shared with the StatefulSet and DaemonSet
controllers): a pod maps to the object named by its controller
ownerReference (when that object is in the cache with the same uid), and an
orphan pod to every object of its namespace whose selector matches it, so
that it can be adopted. Handlers also tell `ControllerExpectations` about
pod creations and deletions, which is what lets a sync run on a lagging
cache without acting twice.

`sync(key)` is level-triggered: it re-reads the object from the cache
(gone means deleted: its expectations are forgotten), claims pods (adopts
matching orphans with a strategic-merge patch of `ownerReferences`, releases
owned pods whose labels stopped matching), and, when its expectations are
satisfied and it is not being deleted, creates the missing pods in slow-start
batches or deletes the surplus in `deletion_rank` order. Only active pods
count, so a deleted or failed pod is replaced. Then it writes the status
through the `status` subresource if it changed, with `ReplicaFailure` set
while creates or deletes fail, and requeues itself for the moment the next
ready pod becomes available under `minReadySeconds`.

API failures (a 409 on the status write, a refused create) are raised out of
the sync: the work queue retries the key with backoff. After a restart the
controller trusts only its synced informers, which already hold every pod it
created, so it never creates duplicates.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging

from minik.api.errors import ApiError
from minik.api.meta import (
    find_condition,
    format_time,
    generation_of,
    is_being_deleted,
    is_pod_ready,
    labels_of,
    meta_of,
    namespace_of,
    new_controller_ref,
    uid_of,
    with_condition,
    without_condition,
)
from minik.api.objects import (
    Condition,
    OwnerReference,
    Pod,
    PodTemplateSpec,
    ReplicaSetStatus,
)
from minik.api.resources import PODS
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.podcontrol import (
    PodControl,
    check_can_adopt,
    claim_pods,
    is_pod_active,
    is_pod_available,
    pods_to_delete,
    requeue_for_availability,
    slow_start_batch,
)
from minik.controllers.podevents import PodEvents
from minik.controllers.replica_kinds import (
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    Replicated,
    ReplicatedKind,
    selector_of,
)
from minik.machinery.informer import Informer, key_of
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

REPLICA_FAILURE = "ReplicaFailure"
DEFAULT_WORKERS = 5
BURST_REPLICAS = 500
STATUS_UPDATE_ATTEMPTS = 2


def desired_replicas(rs: Replicated) -> int:
    replicas = (rs.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def min_ready_seconds(rs: Replicated) -> int:
    return int((rs.get("spec") or {}).get("minReadySeconds") or 0)


def template_of(rs: Replicated) -> PodTemplateSpec:
    return (rs.get("spec") or {}).get("template") or {}


def template_labels(rs: Replicated) -> dict[str, str]:
    return (template_of(rs).get("metadata") or {}).get("labels") or {}


def _failure_reason(rs: Replicated, pods: list[Pod]) -> str:
    diff = len(pods) - desired_replicas(rs)
    return "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""


def _conditions(rs: Replicated, pods: list[Pod], error: Exception | None,
                now: dt.datetime) -> list[Condition]:
    conditions = (rs.get("status") or {}).get("conditions") or []
    failing = find_condition(conditions, REPLICA_FAILURE) is not None
    if error is not None and not failing:
        return with_condition(conditions, {
            "type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": format_time(now),
            "reason": _failure_reason(rs, pods), "message": str(error)})
    if error is None and failing:
        return without_condition(conditions, REPLICA_FAILURE)
    return list(conditions)


def replica_set_status(rs: Replicated, pods: list[Pod], error: Exception | None, *,
                       now: dt.datetime) -> ReplicaSetStatus:
    """The status `rs` should have, given the active pods it owns and the last manage error."""
    wanted_labels = template_labels(rs).items()
    min_ready = min_ready_seconds(rs)
    status = copy.copy(rs.get("status") or {})
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = sum(1 for p in pods
                                         if wanted_labels <= labels_of(p).items())
    status["readyReplicas"] = sum(1 for p in pods if is_pod_ready(p))
    status["availableReplicas"] = sum(1 for p in pods if is_pod_available(p, min_ready, now))
    status["observedGeneration"] = generation_of(rs)
    conditions = _conditions(rs, pods, error, now)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


class ReplicaController:
    """Creates and deletes pods so that every object of one replicated kind (ReplicaSets, or
    ReplicationControllers) has `spec.replicas` of them."""

    def __init__(
        self, ctx: ControllerContext, *, kind: ReplicatedKind, workers: int = DEFAULT_WORKERS,
        burst_replicas: int = BURST_REPLICAS, expectations: ControllerExpectations | None = None,
    ) -> None:
        self.kind = kind
        self.name = kind.controller_name
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.burst_replicas = burst_replicas
        self.clock = ctx.clock
        self.expectations = expectations or ControllerExpectations(clock=ctx.clock)
        self.pod_control = PodControl(ctx.client, ctx.events)
        self.replicasets: Informer[Replicated] = ctx.informers.get(kind.rt)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.queue = WorkQueue(self.name, metrics=self.metrics, clock=ctx.clock)
        self.replicasets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_events = PodEvents(kind.kind, self.replicasets.indexer, self.queue,
                                    self.expectations,
                                    selector=lambda rs: selector_of(rs, self.kind))
        self.pods.add_handler(self.pod_events.added, self.pod_events.updated,
                              self.pod_events.deleted)

    async def run(self) -> None:
        """Wait for the caches, then sync every object and follow changes until cancelled."""
        await self.informers.wait_synced(self.kind.rt, PODS)
        for rs in self.replicasets.indexer.list():
            self.queue.add(key_of(rs))
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    # ------------------------------------------------------------ handlers

    def _rs_added(self, rs: Replicated) -> None:
        self.queue.add(key_of(rs))

    def _rs_updated(self, old: Replicated, new: Replicated) -> None:
        self.queue.add(key_of(new))

    def _rs_deleted(self, rs: Replicated) -> None:
        key = key_of(rs)
        self.expectations.forget(key)
        self.queue.add(key)

    # ---------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        """Reconcile one object: claim pods, create or delete, write status."""
        rs = self.replicasets.indexer.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        selector = selector_of(rs, self.kind)
        if selector is None:
            return
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claim_pods(rs, selector)
        error = None
        if needs_sync and not is_being_deleted(rs):
            error = await self._manage_replicas(key, rs, pods)
        await self._update_status(rs, pods, error)
        if error is not None:
            raise error
        self._requeue_for_availability(rs, pods)

    def _active_pods(self, rs: Replicated) -> list[Pod]:
        namespace = namespace_of(rs) or ""
        return [p for p in self.pods.indexer.list(namespace) if is_pod_active(p)]

    async def _claim_pods(self, rs: Replicated, selector: LabelSelector) -> list[Pod]:
        return await claim_pods(self.pod_control, rs, selector, self._active_pods(rs),
                                ref=self._controller_ref(rs),
                                can_adopt=lambda: check_can_adopt(self.client, self.kind.rt, rs))

    def _controller_ref(self, rs: Replicated) -> OwnerReference:
        return new_controller_ref(rs, api_version=self.kind.rt.api_version, kind=self.kind.kind)

    async def _manage_replicas(self, key: str, rs: Replicated,
                               pods: list[Pod]) -> Exception | None:
        diff = len(pods) - desired_replicas(rs)
        if diff < 0:
            return await self._create_pods(key, rs, min(-diff, self.burst_replicas))
        if diff > 0:
            return await self._delete_pods(key, rs, pods_to_delete(pods, min(diff,
                                                                             self.burst_replicas)))
        return None

    async def _create_pods(self, key: str, rs: Replicated, count: int) -> Exception | None:
        self.expectations.expect_creations(key, count)
        template = template_of(rs)
        ref = self._controller_ref(rs)
        created, error = await slow_start_batch(
            count, lambda: self.pod_control.create(rs, template, ref))
        for _ in range(count - created):
            self.expectations.creation_observed(key)
        return error

    async def _delete_pods(self, key: str, rs: Replicated,
                           victims: list[Pod]) -> Exception | None:
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        results = await asyncio.gather(*(self._delete_one(key, rs, p) for p in victims),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        return next((r for r in results if isinstance(r, Exception)), None)

    async def _delete_one(self, key: str, rs: Replicated, pod: Pod) -> None:
        try:
            gone_already = not await self.pod_control.delete(rs, pod)
        except Exception:
            self.expectations.deletion_observed(key, key_of(pod))
            raise
        if gone_already:
            self.expectations.deletion_observed(key, key_of(pod))

    async def _update_status(self, rs: Replicated, pods: list[Pod],
                             error: Exception | None) -> None:
        """PUT the status if it changed; after a 409, once more on a fresh read.

        A fresh read with a newer generation is left alone: its own watch
        event syncs it, with pods counted for the new spec.
        """
        md = meta_of(rs)
        for attempt in range(STATUS_UPDATE_ATTEMPTS):
            status = replica_set_status(rs, pods, error, now=self.clock.wall())
            if status == (rs.get("status") or {}):
                return
            try:
                await self.client.replace(self.kind.rt, md.get("namespace"), md["name"],
                                          {**rs, "status": status}, subresource="status")
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409 or attempt + 1 == STATUS_UPDATE_ATTEMPTS:
                    raise
            fresh = await self.client.get(self.kind.rt, md.get("namespace"), md["name"])
            if uid_of(fresh) != md.get("uid") or generation_of(fresh) != generation_of(rs):
                return
            rs = fresh

    def _requeue_for_availability(self, rs: Replicated, pods: list[Pod]) -> None:
        """Sync again when the next ready pod has been ready for minReadySeconds."""
        requeue_for_availability(pods, min_ready_seconds(rs), self.clock.wall())


def replica_set_controller(ctx: ControllerContext) -> ReplicaController:
    """Kubernetes' ReplicaSetController: the replica controller of apps/v1 ReplicaSets."""
    return ReplicaController(ctx, kind=REPLICA_SET)


def replication_manager(ctx: ControllerContext) -> ReplicaController:
    """Kubernetes' ReplicationManager: the replica controller of core/v1
    ReplicationControllers."""
    return ReplicaController(ctx, kind=REPLICATION_CONTROLLER)
