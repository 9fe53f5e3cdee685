"""One sync of one Deployment: its working copies, and the writes that keep them current.

A `Rollout` holds the deployment and the ReplicaSets it owns as last read
or written, and makes every write a sync needs: it finds the new ReplicaSet
(syncing its revision and annotations) or creates it, scales ReplicaSets,
prunes old ones beyond `revisionHistoryLimit`, and writes the deployment's
revision annotation and status. The strategies (`strategies`) decide the
sizes; this module carries them out.

Every write carries the resourceVersion it read and replaces the working
copy with the server's answer, so the next decision of the same sync sees
it; a 409 is left to the controller, which asks for a rate-limited
`Requeue`. ReplicaSet names are deterministic (`<deployment>-<hash>`), so a
restarted controller never creates one twice: a create that finds the name
taken adopts its own ReplicaSet, or counts a hash collision in
`status.collisionCount` when the name belongs to another template. Status
goes through `/status` only when it changed; a rollout without progress is
looked at again when its progressDeadlineSeconds would pass
(`Requeue(after=...)`). Time is the controller's clock (`wall` stamps
conditions).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from minik.api.errors import ApiError
from minik.api.meta import annotations_of, controller_of, meta_of, name_of, uid_of
from minik.api.objects import (
    ConditionStatus,
    Deployment,
    DeploymentStatus,
    JsonObject,
    ReplicaSet,
)
from minik.api.resources import DEPLOYMENTS, REPLICASETS
from minik.api.revisions import REVISION, equal_ignore_hash
from minik.client.aio import AsyncClient
from minik.controllers.deployment import history, progress, sizes
from minik.machinery.events import EventRecorder
from minik.machinery.requeue import Requeue


@dataclass(slots=True)
class Rollout:
    """One sync's working copies, the deployment and its ReplicaSets, and their writes."""

    d: Deployment
    rss: list[ReplicaSet]
    client: AsyncClient
    events: EventRecorder
    wall: Callable[[], dt.datetime]

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

    # -------------------------------------------------- new and old ReplicaSets

    async def new_and_old(self, *,
                          create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
        """The new ReplicaSet (revision synced, or created) and the old ones."""
        new = history.find_new_replica_set(self.d, self.rss)
        old = self.others(new)
        next_revision = history.max_revision(old) + 1
        if new is not None:
            return await self._sync_new(new, next_revision), old
        if not create:
            return None, old
        return await self._create_new(old, next_revision), old

    async def _sync_new(self, new: ReplicaSet, next_revision: int) -> ReplicaSet:
        d = self.d
        wanted = history.new_rs_annotations(d, new, next_revision, exists=True)
        min_ready = d["spec"].get("minReadySeconds") or 0
        patch: JsonObject = {}
        if wanted != annotations_of(new):
            patch["metadata"] = {"annotations": wanted}
        if (new["spec"].get("minReadySeconds") or 0) != min_ready:
            patch["spec"] = {"minReadySeconds": min_ready}
        if patch:
            patch.setdefault("metadata", {})["resourceVersion"] = meta_of(new)["resourceVersion"]
            return self.replace(await self.client.patch(REPLICASETS, self.namespace,
                                                        name_of(new), patch))
        await self._set_revision(annotations_of(new).get(REVISION))
        if progress.has_deadline(d) and progress.progressing_of(d) is None:
            message = f'Found new replica set "{name_of(new)}"'
            await self._set_progressing("True", progress.FOUND_NEW_RS, message)
        return new

    async def _create_new(self, old: list[ReplicaSet], next_revision: int) -> ReplicaSet:
        d = self.d
        collisions = (d.get("status") or {}).get("collisionCount")
        body = history.replica_set_for(
            d, history.template_hash(d["spec"]["template"], collisions), next_revision)
        body["spec"]["replicas"] = sizes.new_rs_new_replicas(d, [*old, body], body)
        name = name_of(body)
        try:
            created = await self.client.create(REPLICASETS, self.namespace, body)
            existed = False
        except ApiError as e:
            if e.code != 409:
                await self._create_failed(name, e)
                raise
            created, existed = await self._existing_or_collision(name, e), True
        self.replace(created)
        if not existed and sizes.replicas(created) > 0:
            self._scaled(name, 0, sizes.replicas(created))
        await self._set_revision(str(next_revision))
        if not existed and progress.has_deadline(d):
            await self._set_progressing("True", progress.NEW_RS_CREATED,
                                        f'Created new replica set "{name}"')
        return created

    async def _existing_or_collision(self, name: str, error: ApiError) -> ReplicaSet:
        """Ours already (a cache behind the API), or another template's: count a collision."""
        rs = await self.client.get(REPLICASETS, self.namespace, name)
        ref = controller_of(rs)
        if (ref is not None and ref.get("uid") == uid_of(self.d) and equal_ignore_hash(
                rs["spec"].get("template") or {}, self.d["spec"]["template"])):
            return rs
        status = copy.deepcopy(self.d.get("status") or {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._write_status(status)
        raise error

    async def _create_failed(self, name: str, error: ApiError) -> None:
        if error.code == 403:
            return
        message = f'Failed to create new replica set "{name}": {error}'
        if progress.has_deadline(self.d):
            await self._set_progressing("False", progress.FAILED_RS_CREATE, message)
        self.events.record(self.d, "Warning", progress.FAILED_RS_CREATE, message)

    # -------------------------------------------------------- scale and prune

    async def scale(self, rs: ReplicaSet, size: int) -> bool:
        """Set a ReplicaSet's size and replicas annotations; True when the size changed."""
        wanted = sizes.replicas_annotations(self.d)
        old = sizes.replicas(rs)
        stale = any(annotations_of(rs).get(k) != v for k, v in wanted.items())
        if old == size and not stale:
            return False
        md = meta_of(rs)
        patch = {"metadata": {"resourceVersion": md["resourceVersion"], "annotations": wanted},
                 "spec": {"replicas": size}}
        self.replace(await self.client.patch(REPLICASETS, self.namespace, md["name"], patch))
        if old != size:
            self._scaled(md["name"], old, size)
        return old != size

    def _scaled(self, name: str, old: int, size: int) -> None:
        direction = "up" if size > old else "down"
        self.events.record(self.d, "Normal", "ScalingReplicaSet",
                           f"Scaled {direction} replica set {name} from {old} to {size}")

    async def cleanup(self, new: ReplicaSet | None) -> None:
        """Delete the old ReplicaSets that revisionHistoryLimit no longer keeps."""
        for rs in history.replica_sets_to_prune(self.d, self.others(new)):
            md = meta_of(rs)
            try:
                await self.client.delete(REPLICASETS, self.namespace, md["name"],
                                         uid=uid_of(rs), resource_version=md["resourceVersion"])
            except ApiError as e:
                if e.code != 404:
                    raise
            self.rss = self.others(rs)

    # --------------------------------------------------------------- status

    async def check_paused(self) -> None:
        """Pausing and resuming are Progressing conditions, so a pause never times out."""
        d = self.d
        current = progress.progressing_of(d)
        if not progress.has_deadline(d) or (
                current and current.get("reason") == progress.TIMED_OUT):
            return
        shown = current is not None and current.get("reason") == progress.PAUSED
        paused = bool(d["spec"].get("paused"))
        if paused and not shown:
            await self._set_progressing("Unknown", progress.PAUSED, "Deployment is paused")
        elif shown and not paused:
            await self._set_progressing("Unknown", progress.RESUMED, "Deployment is resumed")

    async def _set_progressing(self, state: ConditionStatus, reason: str, message: str) -> None:
        status = copy.deepcopy(self.d.get("status") or {})
        progress.set_condition(status, progress.new_condition(progress.PROGRESSING, state, reason,
                                                              message, self.wall()))
        await self.write_if_changed(status)

    async def _set_revision(self, revision: str | None) -> None:
        if not revision or annotations_of(self.d).get(REVISION) == revision:
            return
        md = meta_of(self.d)
        patch = {"metadata": {"resourceVersion": md["resourceVersion"],
                              "annotations": {REVISION: revision}}}
        answer = await self.client.patch(DEPLOYMENTS, self.namespace, md["name"], patch)
        self.d["metadata"] = answer["metadata"]

    async def sync_status(self, new: ReplicaSet | None) -> None:
        """Write the status of a rollout in progress; look again at its progress deadline."""
        moment = self.wall()
        status = progress.rollout_status(self.d, self.rss, self.fresh(new), moment)
        if status != (self.d.get("status") or {}):
            await self._write_status(status)
            return
        after = progress.progress_check_after(self.d, status, moment)
        if after is not None:
            raise Requeue("checking the progress deadline", after=after)

    async def write_if_changed(self, status: DeploymentStatus) -> None:
        if status != (self.d.get("status") or {}):
            await self._write_status(status)

    async def _write_status(self, status: DeploymentStatus) -> None:
        body: Deployment = {**self.d, "status": status}
        answer = await self.client.replace(DEPLOYMENTS, self.namespace, name_of(self.d), body,
                                           subresource="status")
        self.d["metadata"], self.d["status"] = answer["metadata"], answer.get("status") or {}
