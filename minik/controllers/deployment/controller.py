"""The deployment controller: rolls a Deployment's pod template out through ReplicaSets.

As Kubernetes' `pkg/controller/deployment`: a Deployment owns ReplicaSets
named `<deployment>-<pod-template-hash>`; the one whose template equals the
deployment's is the new ReplicaSet, the others are old. `sync(key)` is
level-triggered on shared informers of deployments, ReplicaSets and pods
(a pod that finishes or goes may be what a Recreate rollout waits for). It
claims ReplicaSets (keeps owned matching ones, releases the others, adopts
matching orphans once a fresh read shows the deployment is still there),
then hands the rest to a `Rollout` of working copies: a deployment being
deleted only reports its status; a paused or resized one only scales
(`strategies.sync_scale`); otherwise its strategy rolls it out
(`strategies.rolling_update`, `strategies.recreate`). A 409 from any write
asks the work queue for a rate-limited `Requeue`.
"""

from __future__ import annotations

import copy
import logging

from minik.api.errors import ApiError
from minik.api.meta import (
    controller_of,
    is_being_deleted,
    is_pod_terminal,
    labels_of,
    meta_of,
    namespace_of,
    new_controller_ref,
    uid_of,
)
from minik.api.objects import Deployment, JsonObject, Pod, ReplicaSet
from minik.api.resources import DEPLOYMENTS, PODS, REPLICASETS
from minik.api.selectors.labels import LabelSelector
from minik.controllers.context import ControllerContext
from minik.controllers.deployment import progress, sizes, strategies
from minik.controllers.deployment.rollout import Rollout
from minik.controllers.podcontrol import adopt_patch, release_patch
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 4


def selector_of(d: Deployment) -> LabelSelector:
    return LabelSelector.from_spec(d["spec"].get("selector"))


class DeploymentController:
    """Keeps every Deployment's ReplicaSets and status in line with its spec."""

    name = "deployment"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.events = ctx.events
        self.workers = workers
        self.clock = ctx.clock
        self.wall = ctx.clock.wall
        self.deployments: Informer[Deployment] = ctx.informers.get(DEPLOYMENTS)
        self.replicasets: Informer[ReplicaSet] = ctx.informers.get(REPLICASETS)
        self.pods: Informer[Pod] = ctx.informers.get(PODS)
        self.queue = WorkQueue(self.name, metrics=self.ctx.metrics, clock=self.clock)
        self.deployments.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                                     self._enqueue)
        self.replicasets.add_handler(self._rs_changed, self._rs_updated, self._rs_changed)
        self.pods.add_handler(on_update=self._pod_updated, on_delete=self._pod_gone)

    async def run(self) -> None:
        await self.ctx.informers.wait_synced(DEPLOYMENTS, REPLICASETS, PODS)
        for d in self.deployments.indexer.list():
            self._enqueue(d)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.ctx.metrics)

    # ------------------------------------------------------------ handlers

    def _enqueue(self, d: Deployment) -> None:
        self.queue.add(key_of(d))

    def _owner(self, rs: ReplicaSet) -> Deployment | None:
        ref = controller_of(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.indexer.get_by(namespace_of(rs), ref.get("name", ""))
        return d if d is not None and uid_of(d) == ref.get("uid") else None

    def _rs_changed(self, rs: ReplicaSet) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self._enqueue(owner)
        elif controller_of(rs) is None:
            for d in self.deployments.indexer.list(meta_of(rs).get("namespace")):
                if selector_of(d).matches(labels_of(rs)):
                    self._enqueue(d)

    def _rs_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if controller_of(old) != controller_of(new):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if is_pod_terminal(new):
            self._pod_gone(new)

    def _pod_gone(self, pod: Pod) -> None:
        """A Recreate rollout may be waiting for the last old pod."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.indexer.get_by(namespace_of(pod), ref.get("name", ""))
        d = self._owner(rs) if rs is not None else None
        if d is not None and not sizes.is_rolling(d):
            self._enqueue(d)

    # ---------------------------------------------------------------- sync

    async def sync(self, key: str) -> None:
        cached = self.deployments.indexer.get(key)
        if cached is None:
            return
        try:
            await self._sync(copy.deepcopy(cached))
        except ApiError as e:
            if e.code != 409:
                raise
            raise Requeue(str(e)) from e

    async def _sync(self, d: Deployment) -> None:
        st = Rollout(d, await self._claim(d), client=self.client, events=self.events,
                     wall=self.wall)
        if is_being_deleted(d):
            new, _ = await st.new_and_old(create=False)
            await st.write_if_changed(progress.calculate_status(d, st.rss, new, self.wall()))
            return
        await st.check_paused()
        if d["spec"].get("paused"):
            await strategies.sync_scale(st)
            return
        new, old = await st.new_and_old(create=False)
        if sizes.is_scaling_event(d, [new, *old]):
            await strategies.sync_scale(st)
        elif sizes.is_rolling(d):
            await strategies.rolling_update(st)
        else:
            await strategies.recreate(st, self.pods.indexer)

    # ------------------------------------------------------ ReplicaSet claim

    async def _claim(self, d: Deployment) -> list[ReplicaSet]:
        selector, owned = selector_of(d), []
        can_adopt: bool | None = None
        for rs in self.replicasets.indexer.list(meta_of(d)["namespace"]):
            ref, matches = controller_of(rs), selector.matches(labels_of(rs))
            if ref is not None:
                if ref.get("uid") != uid_of(d):
                    continue
                if matches:
                    owned.append(rs)
                elif not is_being_deleted(d):
                    await self._patch_rs(rs, release_patch(rs, uid_of(d)))
                continue
            if not matches or is_being_deleted(rs) or is_being_deleted(d):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(d)
            if can_adopt and (adopted := await self._adopt(d, rs)) is not None:
                owned.append(adopted)
        return owned

    async def _can_adopt(self, d: Deployment) -> bool:
        """Only a deployment that still exists, unchanged in uid and not deleted, adopts."""
        md = meta_of(d)
        try:
            fresh = await self.client.get(DEPLOYMENTS, md["namespace"], md["name"])
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return uid_of(fresh) == uid_of(d) and not is_being_deleted(fresh)

    async def _adopt(self, d: Deployment, rs: ReplicaSet) -> ReplicaSet | None:
        ref = new_controller_ref(d, api_version="apps/v1", kind="Deployment")
        return await self._patch_rs(rs, adopt_patch(rs, ref))

    async def _patch_rs(self, rs: ReplicaSet, patch: JsonObject) -> ReplicaSet | None:
        md = meta_of(rs)
        try:
            return await self.client.patch(REPLICASETS, md["namespace"], md["name"], patch,
                                           patch_type="strategic")
        except ApiError as e:
            if e.code == 404:
                return None
            raise
