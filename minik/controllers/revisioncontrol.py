"""The ControllerRevisions of a StatefulSet or a DaemonSet, as its controller reads and writes them.

Kubernetes' `history.Interface` for one owner: the revisions it owns (and
orphans its selector matches, adopted), the current and the update
revision of a sync (`getStatefulSetRevisions`, `constructHistory`: the
newest equal revision is the update revision, an older equal one is
renumbered to the next revision, otherwise a new revision is created,
counting a collision whenever its name is taken by other data), the
deletion of duplicates of the update revision (a DaemonSet's), and the
deletion of history beyond `revisionHistoryLimit` (`minik.controllers.history`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from minik.api.errors import ApiError
from minik.api.meta import labels_of, meta_of, name_of, namespace_of, new_controller_ref, uid_of
from minik.api.objects import ControllerRevision, JsonObject, Pod
from minik.api.resources import CONTROLLERREVISIONS, PODS
from minik.api.selectors.labels import LabelSelector
from minik.client.aio import AsyncClient
from minik.controllers import history
from minik.controllers.history import HistoryKind, HistoryOwner
from minik.controllers.podcontrol import adopt_patch
from minik.machinery.informer import Indexer


@dataclass(frozen=True, slots=True)
class Revisions:
    """A sync's view of an owner's history."""

    all: list[ControllerRevision]
    current: ControllerRevision
    update: ControllerRevision
    collision_count: int | None


class RevisionControl:
    """Lists, adopts, creates, renumbers and truncates an owner's ControllerRevisions."""

    def __init__(self, client: AsyncClient, revisions: Indexer[ControllerRevision],
                 kind: HistoryKind) -> None:
        self.client = client
        self.revisions = revisions
        self.kind = kind

    async def list_owned(self, owner: HistoryOwner, selector: LabelSelector,
                         can_adopt: bool) -> list[ControllerRevision]:
        """The set's revisions, sorted; matching orphans adopted when `can_adopt`."""
        owned: list[ControllerRevision] = []
        for revision in self.revisions.list(namespace_of(owner)):
            refs = meta_of(revision).get("ownerReferences") or []
            if any(r.get("controller") and r.get("uid") == uid_of(owner) for r in refs):
                owned.append(revision)
            elif can_adopt and history.is_orphan_of(revision) and \
                    selector.matches(labels_of(revision)):
                ref = new_controller_ref(owner, api_version="apps/v1", kind=self.kind.kind)
                try:
                    owned.append(await self.client.patch(
                        CONTROLLERREVISIONS, namespace_of(revision), name_of(revision),
                        adopt_patch(revision, ref), patch_type="strategic"))
                except ApiError as e:
                    if e.code != 404:
                        raise
        return history.sort_revisions(owned)

    async def for_sync(self, owner: HistoryOwner,
                       revisions: list[ControllerRevision]) -> Revisions:
        """The current and update revisions, creating or renumbering the update revision
        (a DaemonSet names no current revision: its current one is the update revision)."""
        collisions = history.collision_count(owner)
        wanted = history.new_revision(owner, history.next_revision(revisions), collisions,
                                      kind=self.kind)
        equal = history.find_equal(revisions, wanted)
        if equal and revisions and history.equal_revisions(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self._renumber(equal[-1], history.number_of(wanted))
        else:
            update, collisions = await self._create(owner, wanted, collisions)
        current_name = cast(JsonObject, owner.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if name_of(r) == current_name), update)
        return Revisions(revisions, current, update, collisions)

    async def _renumber(self, revision: ControllerRevision, number: int) -> ControllerRevision:
        md = meta_of(revision)
        return await self.client.patch(
            CONTROLLERREVISIONS, md.get("namespace"), md["name"],
            {"revision": number, "metadata": {"resourceVersion": md.get("resourceVersion")}})

    async def _create(self, owner: HistoryOwner, revision: ControllerRevision,
                      collisions: int | None) -> tuple[ControllerRevision, int | None]:
        while True:
            try:
                created = await self.client.create(CONTROLLERREVISIONS, namespace_of(owner),
                                                   revision)
                return created, collisions
            except ApiError as e:
                if e.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(CONTROLLERREVISIONS, namespace_of(owner),
                                             name_of(revision))
            if existing.get("data") == revision.get("data"):
                return existing, collisions
            collisions = (collisions or 0) + 1
            revision = history.renamed(revision, owner, collisions, kind=self.kind)

    async def dedup(self, view: Revisions, pods: list[Pod]) -> list[ControllerRevision]:
        """`dedupCurHistories`: delete the revisions equal to the update revision but for
        it, first relabelling the pods made from them as made from it. Returns those
        deleted. (Kubernetes relabels every pod not of the update revision; only the
        duplicates' pods are meant.)"""
        duplicates = [r for r in view.all if name_of(r) != name_of(view.update)
                      and history.equal_revisions(r, view.update)]
        keys = {self.kind.pod_key(r) for r in duplicates}
        wanted = self.kind.pod_key(view.update)
        for pod in pods:
            if history.revision_of(pod) not in keys:
                continue
            try:
                await self.client.patch(PODS, namespace_of(pod), name_of(pod), {"metadata": {
                    "labels": {history.POD_REVISION_LABEL: wanted}}})
            except ApiError as e:
                if e.code != 404:
                    raise
        await self.delete(duplicates)
        return duplicates

    async def truncate(self, owner: HistoryOwner, pods: list[Pod], view: Revisions) -> None:
        """Delete the history beyond the owner's limit that no pod was made from."""
        live = {name_of(view.current), *history.live_revisions(self.kind, view.all, pods)}
        await self.delete(history.revisions_to_truncate(owner, view.all, live,
                                                        name_of(view.update), kind=self.kind))

    async def delete(self, revisions: list[ControllerRevision]) -> None:
        """Delete `revisions` (by uid); those already gone are fine."""
        for revision in revisions:
            md = meta_of(revision)
            try:
                await self.client.delete(CONTROLLERREVISIONS, md.get("namespace"), md["name"],
                                         uid=md.get("uid"))
            except ApiError as e:
                if e.code != 404:
                    raise
