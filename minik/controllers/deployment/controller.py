"""The deployment controller: rolls a Deployment's pod template out through ReplicaSets.

As Kubernetes' `pkg/controller/deployment`: a Deployment owns ReplicaSets
named `<deployment>-<pod-template-hash>`; the one whose template equals the
deployment's (`equal_ignore_hash`) is the new ReplicaSet, the others are
old. `sync(key)` is level-triggered on shared informers of deployments,
ReplicaSets and pods. It claims ReplicaSets (keeps owned matching ones,
releases the others, adopts matching orphans); when paused or resized (an
active ReplicaSet's desired-replicas annotation differs) it only scales,
proportionally mid-rollout; otherwise it rolls out. RollingUpdate grows the
new ReplicaSet within maxSurge and shrinks old ones within maxUnavailable by
their reported availableReplicas; Recreate scales old ones to 0, waits until
none of their pods runs, then scales up the new one. A finished rollout
prunes old ReplicaSets beyond revisionHistoryLimit. Status goes through
`/status` only when it changed; a rollout without progress is looked at
again when its progressDeadlineSeconds would pass (`Requeue(after=...)`). Time is the
context's clock (`ctx.clock.wall()` stamps conditions).

Every write carries the resourceVersion it read and replaces the working
copy with the server's answer; a 409 asks for a rate-limited `Requeue`. ReplicaSet names are
deterministic, so a restarted controller never creates one twice.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from minik.api.errors import ApiError
from minik.api.meta import (
    annotations_of,
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
    ConditionStatus,
    Deployment,
    DeploymentStatus,
    JsonObject,
    Pod,
    ReplicaSet,
)
from minik.api.resources import REGISTRY
from minik.api.revisions import HASH_LABEL, REVISION, equal_ignore_hash
from minik.api.selectors.labels import LabelSelector
from minik.controllers.deployment import sizes as du
from minik.controllers.podcontrol import adopt_patch, release_patch
from minik.machinery.informer import OWNER_INDEX, Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

if TYPE_CHECKING:
    from minik.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 4


DEPLOYMENTS = REGISTRY.get("deployments")
REPLICASETS = REGISTRY.get("replicasets")


def selector_of(d: Deployment) -> LabelSelector:
    return LabelSelector.from_spec(d["spec"].get("selector"))


def replica_set_for(d: Deployment, pod_hash: str, revision: int) -> ReplicaSet:
    """The new ReplicaSet of `d`: its template, the hash label, owned by `d`, size 0."""
    template = copy.deepcopy(d["spec"]["template"])
    labels = {**(template.setdefault("metadata", {}).get("labels") or {}), HASH_LABEL: pod_hash}
    template["metadata"]["labels"] = labels
    selector = copy.deepcopy(d["spec"]["selector"])
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    rs: ReplicaSet = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{name_of(d)}-{pod_hash}", "namespace": meta_of(d)["namespace"],
                     "labels": dict(labels),
                     "ownerReferences": [new_controller_ref(d, api_version="apps/v1",
                                                            kind="Deployment")]},
        "spec": {"replicas": 0, "selector": selector, "template": template},
    }
    if d["spec"].get("minReadySeconds"):
        rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
    rs["metadata"]["annotations"] = du.new_rs_annotations(d, rs, revision, exists=False)
    return rs


@dataclass(slots=True)
class Rollout:
    """One sync's working copies: the deployment and its ReplicaSets, as last written."""

    d: Deployment
    rss: list[ReplicaSet]

    @property
    def namespace(self) -> str:
        return meta_of(self.d)["namespace"]

    def fresh(self, rs: ReplicaSet | None) -> ReplicaSet | None:
        return next((r for r in self.rss if uid_of(r) == uid_of(rs)), None) if rs else None

    def others(self, rs: ReplicaSet | None) -> list[ReplicaSet]:
        uid = uid_of(rs) if rs else None
        return [r for r in self.rss if uid_of(r) != uid]

    def replace(self, rs: ReplicaSet) -> ReplicaSet:
        self.rss = [*self.others(rs), rs]
        return rs


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
        self.deployments: Informer[Deployment] = ctx.informers.get("deployments")
        self.replicasets: Informer[ReplicaSet] = ctx.informers.get("replicasets")
        self.pods: Informer[Pod] = ctx.informers.get("pods")
        self.queue = WorkQueue(self.name, metrics=self.ctx.metrics, clock=self.clock)
        self.deployments.add_handler(self._enqueue, lambda _old, new: self._enqueue(new),
                                     self._enqueue)
        self.replicasets.add_handler(self._rs_changed, self._rs_updated, self._rs_changed)
        self.pods.add_handler(on_update=self._pod_updated, on_delete=self._pod_gone)


    async def run(self) -> None:
        await self.ctx.informers.wait_synced("deployments", "replicasets", "pods")
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
        if d is not None and not du.is_rolling(d):
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
        st = Rollout(d, await self._claim(d))
        if is_being_deleted(d):
            new, _ = await self._new_and_old(st, create=False)
            await self._write_if_changed(st, du.calculate_status(d, st.rss, new, self.wall()))
            return
        await self._check_paused(st)
        if d["spec"].get("paused"):
            await self._sync_scale(st)
            return
        new, old = await self._new_and_old(st, create=False)
        if du.is_scaling_event(d, [new, *old]):
            await self._sync_scale(st)
        elif du.is_rolling(d):
            await self._rollout_rolling(st)
        else:
            await self._rollout_recreate(st)

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
            return cast(ReplicaSet, await self.client.patch(
                REPLICASETS, md["namespace"], md["name"], patch, patch_type="strategic"))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # -------------------------------------------------- new and old ReplicaSets

    async def _new_and_old(self, st: Rollout, *,
                           create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
        """The new ReplicaSet (revision synced, or created) and the old ones."""
        new = du.find_new_replica_set(st.d, st.rss)
        old = st.others(new)
        next_revision = du.max_revision(old) + 1
        if new is not None:
            return await self._sync_new(st, new, next_revision), old
        if not create:
            return None, old
        return await self._create_new(st, old, next_revision), old

    async def _sync_new(self, st: Rollout, new: ReplicaSet, next_revision: int) -> ReplicaSet:
        d = st.d
        wanted = du.new_rs_annotations(d, new, next_revision, exists=True)
        min_ready = d["spec"].get("minReadySeconds") or 0
        patch: JsonObject = {}
        if wanted != annotations_of(new):
            patch["metadata"] = {"annotations": wanted}
        if (new["spec"].get("minReadySeconds") or 0) != min_ready:
            patch["spec"] = {"minReadySeconds": min_ready}
        if patch:
            patch.setdefault("metadata", {})["resourceVersion"] = meta_of(new)["resourceVersion"]
            return st.replace(cast(ReplicaSet, await self.client.patch(
                REPLICASETS, st.namespace, name_of(new), patch)))
        await self._set_revision(st, annotations_of(new).get(REVISION))
        if du.has_deadline(d) and du.progressing_of(d) is None:
            message = f'Found new replica set "{name_of(new)}"'
            await self._set_progressing(st, "True", du.FOUND_NEW_RS, message)
        return new

    async def _create_new(self, st: Rollout, old: list[ReplicaSet],
                          next_revision: int) -> ReplicaSet:
        d = st.d
        collisions = (d.get("status") or {}).get("collisionCount")
        body = replica_set_for(d, du.template_hash(d["spec"]["template"], collisions),
                               next_revision)
        body["spec"]["replicas"] = du.new_rs_new_replicas(d, [*old, body], body)
        name = name_of(body)
        try:
            created = cast(ReplicaSet, await self.client.create(REPLICASETS, st.namespace, body))
            existed = False
        except ApiError as e:
            if e.code != 409:
                await self._create_failed(st, name, e)
                raise
            created, existed = await self._existing_or_collision(st, name, e), True
        st.replace(created)
        if not existed and du.replicas(created) > 0:
            self._scaled(d, name, 0, du.replicas(created))
        await self._set_revision(st, str(next_revision))
        if not existed and du.has_deadline(d):
            await self._set_progressing(st, "True", du.NEW_RS_CREATED,
                                        f'Created new replica set "{name}"')
        return created

    async def _existing_or_collision(self, st: Rollout, name: str,
                                     error: ApiError) -> ReplicaSet:
        """Ours already (a cache behind the API), or another template's: count a collision."""
        rs = cast(ReplicaSet, await self.client.get(REPLICASETS, st.namespace, name))
        ref = controller_of(rs)
        if (ref is not None and ref.get("uid") == uid_of(st.d) and equal_ignore_hash(
                rs["spec"].get("template") or {}, st.d["spec"]["template"])):
            return rs
        status = copy.deepcopy(st.d.get("status") or {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._write_status(st, status)
        raise error

    async def _create_failed(self, st: Rollout, name: str, error: ApiError) -> None:
        if error.code == 403:
            return
        message = f'Failed to create new replica set "{name}": {error}'
        if du.has_deadline(st.d):
            await self._set_progressing(st, "False", du.FAILED_RS_CREATE, message)
        self.events.record(st.d, "Warning", du.FAILED_RS_CREATE, message)

    # -------------------------------------------------------------- scaling

    async def _scale(self, st: Rollout, rs: ReplicaSet, size: int) -> bool:
        """Set a ReplicaSet's size and replicas annotations; True when the size changed."""
        wanted = du.replicas_annotations(st.d)
        old = du.replicas(rs)
        stale = any(annotations_of(rs).get(k) != v for k, v in wanted.items())
        if old == size and not stale:
            return False
        md = meta_of(rs)
        patch = {"metadata": {"resourceVersion": md["resourceVersion"], "annotations": wanted},
                 "spec": {"replicas": size}}
        st.replace(cast(ReplicaSet, await self.client.patch(REPLICASETS, st.namespace,
                                                            md["name"], patch)))
        if old != size:
            self._scaled(st.d, md["name"], old, size)
        return old != size

    def _scaled(self, d: Deployment, name: str, old: int, size: int) -> None:
        direction = "up" if size > old else "down"
        self.events.record(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {direction} replica set {name} from {old} to {size}")

    async def _sync_scale(self, st: Rollout) -> None:
        """Paused or resized: scale without rolling, then report."""
        new, old = await self._new_and_old(st, create=False)
        await self._scale_proportionally(st, new, old)
        if st.d["spec"].get("paused"):
            await self._cleanup(st, new)
        status = du.calculate_status(st.d, st.rss, st.fresh(new), self.wall())
        await self._write_if_changed(st, status)

    async def _scale_proportionally(self, st: Rollout, new: ReplicaSet | None,
                                    old: list[ReplicaSet]) -> None:
        d = st.d
        target = du.find_active_or_latest(new, old)
        if target is not None:
            if du.replicas(target) != du.replicas(d):
                await self._scale(st, target, du.replicas(d))
        elif du.is_saturated(d, new):
            for rs in du.active(old):
                await self._scale(st, rs, 0)
        elif du.is_rolling(d):
            for rs, size in du.proportional_sizes(d, du.active([new, *old])):
                await self._scale(st, rs, size)

    # ------------------------------------------------------------- rollouts

    async def _rollout_rolling(self, st: Rollout) -> None:
        new, _ = await self._new_and_old(st, create=True)
        if not (await self._grow_new(st, new) or await self._shrink_old(st, new)) and \
                du.deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st, new)
        await self._sync_rollout_status(st, new)

    async def _grow_new(self, st: Rollout, new: ReplicaSet | None) -> bool:
        if new is None:
            return False
        d = st.d
        size = (du.replicas(d) if du.replicas(new) > du.replicas(d)
                else du.new_rs_new_replicas(d, st.rss, new))
        return size != du.replicas(new) and await self._scale(st, new, size)

    async def _shrink_old(self, st: Rollout, new: ReplicaSet | None) -> bool:
        new = st.fresh(new)
        plan = du.old_scale_down(st.d, st.rss, du.active(st.others(new)), new)
        scaled = False
        for rs, size in plan:
            scaled = await self._scale(st, rs, size) or scaled
        return scaled

    async def _rollout_recreate(self, st: Rollout) -> None:
        new, old = await self._new_and_old(st, create=False)
        scaled = False
        for rs in du.active(old):
            scaled = await self._scale(st, rs, 0) or scaled
        if scaled or self._old_pods_running(st, new):
            await self._sync_rollout_status(st, new)
            return
        if new is None:
            new, _ = await self._new_and_old(st, create=True)
        new = st.fresh(new)
        if new is not None and du.replicas(new) != du.replicas(st.d):
            await self._scale(st, new, du.replicas(st.d))
        if du.deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st, new)
        await self._sync_rollout_status(st, new)

    def _old_pods_running(self, st: Rollout, new: ReplicaSet | None) -> bool:
        olds = st.others(new)
        if du.total(olds, "replicas") > 0:
            return True
        return any(not is_pod_terminal(pod)
                   for rs in olds for pod in self.pods.indexer.by_index(OWNER_INDEX, uid_of(rs)))

    async def _cleanup(self, st: Rollout, new: ReplicaSet | None) -> None:
        for rs in du.replica_sets_to_prune(st.d, st.others(new)):
            md = meta_of(rs)
            try:
                await self.client.delete(REPLICASETS, st.namespace, md["name"],
                                         uid=uid_of(rs), resource_version=md["resourceVersion"])
            except ApiError as e:
                if e.code != 404:
                    raise
            st.rss = st.others(rs)

    # --------------------------------------------------------------- status

    async def _check_paused(self, st: Rollout) -> None:
        """Pausing and resuming are Progressing conditions, so a pause never times out."""
        d = st.d
        current = du.progressing_of(d)
        if not du.has_deadline(d) or (current and current.get("reason") == du.TIMED_OUT):
            return
        shown = current is not None and current.get("reason") == du.PAUSED
        paused = bool(d["spec"].get("paused"))
        if paused and not shown:
            await self._set_progressing(st, "Unknown", du.PAUSED, "Deployment is paused")
        elif shown and not paused:
            await self._set_progressing(st, "Unknown", du.RESUMED, "Deployment is resumed")

    async def _set_progressing(self, st: Rollout, state: ConditionStatus, reason: str,
                               message: str) -> None:
        status = copy.deepcopy(st.d.get("status") or {})
        du.set_condition(status, du.new_condition(du.PROGRESSING, state, reason, message,
                                                  self.wall()))
        await self._write_if_changed(st, status)

    async def _set_revision(self, st: Rollout, revision: str | None) -> None:
        if not revision or annotations_of(st.d).get(REVISION) == revision:
            return
        md = meta_of(st.d)
        patch = {"metadata": {"resourceVersion": md["resourceVersion"],
                              "annotations": {REVISION: revision}}}
        answer = await self.client.patch(DEPLOYMENTS, st.namespace, md["name"], patch)
        st.d["metadata"] = answer["metadata"]

    async def _sync_rollout_status(self, st: Rollout, new: ReplicaSet | None) -> None:
        moment = self.wall()
        status = du.rollout_status(st.d, st.rss, st.fresh(new), moment)
        if status != (st.d.get("status") or {}):
            await self._write_status(st, status)
            return
        after = du.progress_check_after(st.d, status, moment)
        if after is not None:
            raise Requeue("checking the progress deadline", after=after)

    async def _write_if_changed(self, st: Rollout, status: DeploymentStatus) -> None:
        if status != (st.d.get("status") or {}):
            await self._write_status(st, status)

    async def _write_status(self, st: Rollout, status: DeploymentStatus) -> None:
        body: Deployment = {**st.d, "status": status}
        answer = await self.client.replace(DEPLOYMENTS, st.namespace, name_of(st.d), body,
                                           subresource="status")
        st.d["metadata"], st.d["status"] = answer["metadata"], answer.get("status") or {}
