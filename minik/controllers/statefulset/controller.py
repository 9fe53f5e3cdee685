"""The StatefulSet controller: handlers, the level-triggered sync, and claiming pods.

Shaped like Kubernetes' `StatefulSetController` on minik's machinery.
Handlers on the shared informers of StatefulSets and pods only compute
keys: a pod maps to the set named by its controller reference (when that
set is cached with the same uid), an orphan pod to every set of its
namespace whose selector matches it, and so does a deleted claim (a stale
claim may have held a pod back). Pod handlers (`minik.controllers.podevents`)
also tell the `ControllerExpectations` about creations and deletions; `sync(key)` acts
only when every create and delete it issued has been seen, so a sync on a
cache that lags its own writes waits for the watch instead of creating an
ordinal twice. Claims and ControllerRevisions are read from their
informers too.

`sync(key)` re-reads the set from the cache (gone: its expectations are
forgotten), claims pods (adopts matching orphans whose names make them
members, releases owned pods whose labels stopped matching), reads its
revisions, makes one `SetUpdate` pass, writes the status through the
`status` subresource when it changed (after completing a finished rolling
update), deletes history beyond `revisionHistoryLimit`, and asks to be
synced again when a ready pod becomes available under `minReadySeconds`.
A 409 anywhere asks for a rate-limited retry; other errors are raised to
the work queue's back-off.

After a restart the controller has no expectations and trusts its synced
informers, which hold every pod, claim and revision that exists: it goes
on from there, creating only the ordinals that are missing.
"""

from __future__ import annotations

import copy
import logging

from minik.api.errors import ApiError
from minik.api.meta import (
    controller_of,
    is_being_deleted,
    meta_of,
    namespace_of,
    new_controller_ref,
    uid_of,
)
from minik.api.objects import (
    ControllerRevision,
    PersistentVolumeClaim,
    Pod,
    StatefulSet,
    StatefulSetStatus,
)
from minik.api.resources import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.expectations import ControllerExpectations
from minik.controllers.history import STATEFULSET, apply_revision
from minik.controllers.podcontrol import (
    PodControl,
    claim_pods,
    requeue_for_availability,
)
from minik.controllers.podevents import PodEvents
from minik.controllers.revisioncontrol import RevisionControl
from minik.controllers.statefulset.control import SetUpdate
from minik.controllers.statefulset.identity import is_member_of, min_ready_seconds
from minik.controllers.statefulset.podcontrol import StatefulPodControl
from minik.controllers.statefulset.status import complete_rolling_update, inconsistent_status
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5


def selector_of(sts: StatefulSet) -> LabelSelector | None:
    try:
        selector = LabelSelector.from_spec((sts.get("spec") or {}).get("selector"))
    except (ApiError, ValueError) as e:
        log.warning("StatefulSet %s has an invalid selector: %s", key_of(sts), e)
        return None
    return None if selector.empty else selector


class StatefulSetController:
    """Keeps every StatefulSet's pods, claims, revisions and status in line with its spec."""

    name = "statefulset"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS,
                 expectations: ControllerExpectations | None = None) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.events = ctx.events
        self.clock = ctx.clock
        self.workers = workers
        self.expectations = expectations or ControllerExpectations(clock=ctx.clock)
        self.sets: Informer[StatefulSet] = ctx.informers.get(STATEFULSETS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.revisions: Informer[ControllerRevision] = ctx.informers.get(CONTROLLERREVISIONS)
        self.claims: Informer[PersistentVolumeClaim] = ctx.informers.get(PERSISTENTVOLUMECLAIMS)
        self.pod_control = StatefulPodControl(ctx.client, ctx.events, self.claims.indexer,
                                              self.expectations)
        self.adoption = PodControl(ctx.client, ctx.events)
        self.revision_control = RevisionControl(ctx.client, self.revisions.indexer,
                                                STATEFULSET)
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.sets.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                              self._set_deleted)
        self.pod_events = PodEvents("StatefulSet", self.sets.indexer, self.queue,
                                    self.expectations, selector=selector_of)
        self.pods.add_handler(self.pod_events.added, self.pod_events.updated,
                              self.pod_events.deleted)
        self.claims.add_handler(on_delete=self._claim_deleted)

    async def run(self) -> None:
        await self.ctx.informers.wait_synced(STATEFULSETS, PODS, CONTROLLERREVISIONS,
                                             PERSISTENTVOLUMECLAIMS)
        for sts in self.sets.indexer.list():
            self._enqueue(sts)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.ctx.metrics)

    # ------------------------------------------------------------ handlers

    def _enqueue(self, sts: StatefulSet) -> None:
        self.queue.add(key_of(sts))

    def _set_deleted(self, sts: StatefulSet) -> None:
        self.expectations.forget(key_of(sts))
        self._enqueue(sts)

    def _claim_deleted(self, claim: PersistentVolumeClaim) -> None:
        """A stale claim that held a pod back is gone: its set may go on."""
        self.pod_events.enqueue_selecting(claim)

    # ---------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        """Reconcile one set, unless a create or delete it issued is still unseen."""
        if (cached := self.sets.indexer.get(key)) is None:
            self.expectations.forget(key)
        elif self.expectations.satisfied(key):
            await self._sync_or_requeue(key, cached)

    async def _sync_or_requeue(self, key: str, cached: StatefulSet) -> None:
        try:
            await self._sync(key, copy.deepcopy(cached))
        except ApiError as e:
            if e.code != 409:
                raise
            raise Requeue(str(e)) from e

    async def _sync(self, key: str, sts: StatefulSet) -> None:
        selector = selector_of(sts)
        if selector is None:
            self.events.record(sts, "Warning", "SelectingAll",
                               "This StatefulSet is selecting all pods. A non-empty selector "
                               "is required.")
            return
        can_adopt = await self._can_adopt(sts)
        pods = await self._claim_pods(sts, selector, can_adopt)
        revisions = await self.revision_control.list_owned(sts, selector, can_adopt)
        view = await self.revision_control.for_sync(sts, revisions)
        now = self.clock.wall()
        update = SetUpdate(key, sts, current_set=apply_revision(sts, view.current),
                           update_set=apply_revision(sts, view.update), current=view.current,
                           update=view.update, collision_count=view.collision_count or 0,
                           pods=pods, control=self.pod_control, now=now)
        status = await update.run()
        await self._write_status(sts, status)
        await self.revision_control.truncate(sts, pods, view)
        if update.error is not None:
            raise update.error
        requeue_for_availability(pods, min_ready_seconds(sts), self.clock.wall())

    async def _can_adopt(self, sts: StatefulSet) -> bool:
        """Only a set that still exists, with the same uid and not being deleted, adopts."""
        if is_being_deleted(sts):
            return False
        md = meta_of(sts)
        try:
            fresh = await self.client.get(STATEFULSETS, md.get("namespace"), md["name"])
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return uid_of(fresh) == uid_of(sts) and not is_being_deleted(fresh)

    async def _claim_pods(self, sts: StatefulSet, selector: LabelSelector,
                          can_adopt: bool) -> list[Pod]:
        """Owned pods, and member orphans the selector matches (adopted when allowed).

        `can_adopt` is the fresh read `_can_adopt` made for the whole sync, so
        orphans are candidates only when it passed.
        """
        uid = uid_of(sts)
        candidates = [p for p in self.pods.indexer.list(namespace_of(sts))
                      if ((ref := controller_of(p)) is not None and ref.get("uid") == uid)
                      or (can_adopt and is_member_of(sts, p))]

        async def allowed() -> None:
            return None

        ref = new_controller_ref(sts, api_version="apps/v1", kind="StatefulSet")
        return await claim_pods(self.adoption, sts, selector, candidates, ref=ref,
                                can_adopt=allowed)

    async def _write_status(self, sts: StatefulSet, status: StatefulSetStatus) -> None:
        complete_rolling_update(sts, status)
        if not inconsistent_status(sts, status):
            return
        md = meta_of(sts)
        merged: StatefulSetStatus = {**(sts.get("status") or {}), **status}
        try:
            await self.client.replace(STATEFULSETS, md.get("namespace"), md["name"],
                                      {**sts, "status": merged}, subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise
