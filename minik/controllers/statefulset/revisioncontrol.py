"""The ControllerRevisions of a StatefulSet, as the controller reads and writes them.

Kubernetes' `history.Interface` for one set: the revisions it owns (and
orphans its selector matches, adopted), the current and the update
revision of a sync (`getStatefulSetRevisions`: the newest equal revision is
the update revision, an older equal one is renumbered, otherwise a new
revision is created, counting a collision whenever its name is taken by
other data), and the deletion of history beyond `revisionHistoryLimit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from minik.api.errors import ApiError
from minik.api.meta import labels_of, meta_of, name_of, namespace_of, new_controller_ref, uid_of
from minik.api.objects import ControllerRevision, Pod, StatefulSet
from minik.api.resources import CONTROLLERREVISIONS
from minik.api.selectors.labels import LabelSelector
from minik.client.aio import AsyncClient
from minik.controllers.podcontrol import adopt_patch
from minik.controllers.statefulset import history
from minik.machinery.informer import Indexer


@dataclass(frozen=True, slots=True)
class Revisions:
    """A sync's view of a set's history."""

    all: list[ControllerRevision]
    current: ControllerRevision
    update: ControllerRevision
    collision_count: int


class RevisionControl:
    """Lists, adopts, creates, renumbers and truncates a set's ControllerRevisions."""

    def __init__(self, client: AsyncClient, revisions: Indexer[ControllerRevision],
                 kind: str = "StatefulSet") -> None:
        self.client = client
        self.revisions = revisions
        self.kind = kind

    async def list_owned(self, sts: StatefulSet, selector: LabelSelector,
                         can_adopt: bool) -> list[ControllerRevision]:
        """The set's revisions, sorted; matching orphans adopted when `can_adopt`."""
        owned: list[ControllerRevision] = []
        for revision in self.revisions.list(namespace_of(sts)):
            refs = meta_of(revision).get("ownerReferences") or []
            if any(r.get("controller") and r.get("uid") == uid_of(sts) for r in refs):
                owned.append(revision)
            elif can_adopt and history.is_orphan_of(revision) and \
                    selector.matches(labels_of(revision)):
                ref = new_controller_ref(sts, api_version="apps/v1", kind=self.kind)
                try:
                    owned.append(await self.client.patch(
                        CONTROLLERREVISIONS, namespace_of(revision), name_of(revision),
                        adopt_patch(revision, ref), patch_type="strategic"))
                except ApiError as e:
                    if e.code != 404:
                        raise
        return history.sort_revisions(owned)

    async def for_sync(self, sts: StatefulSet, revisions: list[ControllerRevision]) -> Revisions:
        """The current and update revisions, creating or renumbering the update revision."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        wanted = history.new_revision(sts, history.next_revision(revisions), collisions,
                                      self.kind)
        equal = history.find_equal(revisions, wanted)
        if equal and revisions and history.equal_revisions(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self._renumber(equal[-1], history.number_of(wanted))
        else:
            update, collisions = await self._create(sts, wanted, collisions)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if name_of(r) == current_name), update)
        return Revisions(revisions, current, update, collisions)

    async def _renumber(self, revision: ControllerRevision, number: int) -> ControllerRevision:
        md = meta_of(revision)
        return await self.client.patch(
            CONTROLLERREVISIONS, md.get("namespace"), md["name"],
            {"revision": number, "metadata": {"resourceVersion": md.get("resourceVersion")}})

    async def _create(self, sts: StatefulSet, revision: ControllerRevision,
                      collisions: int) -> tuple[ControllerRevision, int]:
        while True:
            try:
                created = await self.client.create(CONTROLLERREVISIONS, namespace_of(sts),
                                                   revision)
                return created, collisions
            except ApiError as e:
                if e.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(CONTROLLERREVISIONS, namespace_of(sts),
                                             name_of(revision))
            if existing.get("data") == revision.get("data"):
                return existing, collisions
            collisions += 1
            revision = history.renamed(revision, sts, collisions)

    async def truncate(self, sts: StatefulSet, pods: list[Pod], view: Revisions) -> None:
        live = (name_of(view.current), name_of(view.update))
        await self.delete(history.revisions_to_truncate(sts, pods, view.all, live))

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
