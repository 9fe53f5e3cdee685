"""The garbage collector: dependents follow their owners, as `ownerReferences` say.

It watches every resource type that can own or be owned (all but events)
through the shared informers, and keeps an ownership graph built from them:
uid → (type, object), and owner uid → dependent uids. The graph is rebuilt
from list+watch, so collection works the same after a restart.

A delete's propagation policy reaches the collector as a finalizer the API
server sets without looking for dependents (`orphan`, `foregroundDeletion`):
finding them is the collector's work. A work-queue key names one object
(`replicasets.apps/default/web-1`). Its sync follows the Kubernetes garbage
collector:

- An object being deleted with the `orphan` finalizer: strip the owner
  references that point at it from its dependents, then drop the finalizer.
- An object being deleted with `foregroundDeletion`: queue its dependents
  (each one's own sync deletes it) and drop the finalizer once no dependent
  with `blockOwnerDeletion` remains; the API server then removes the owner.
- Any other object with owner references: each owner is solid (it exists),
  waiting (it exists in foreground deletion) or dangling (no object with
  that uid; the cache's answer is checked with a live GET before acting).
  With a solid owner only references to dangling and waiting owners are
  removed; without one the object is deleted, Foreground when an owner is
  waiting for it, else Background, always with a uid precondition.

Dropping a finalizer cannot be undone, so the dependents are then listed
live from the server rather than taken from the graph, which may not have
seen a dependent created a moment ago. A reference whose kind minik does not
serve, or that has no uid, counts as solid: the collector never deletes on a
guess.
"""

from __future__ import annotations

import enum
import logging
from functools import partial

from minik.api.errors import ApiError
from minik.api.meta import (
    finalizers_of,
    is_being_deleted,
    meta_of,
    namespace_of,
    owner_references_of,
    resource_version_of,
    uid_of,
)
from minik.api.objects import AnyObject, JsonObject, OwnerReference
from minik.api.propagation import FOREGROUND, GC_FINALIZERS, ORPHAN, UNCOLLECTED_KINDS
from minik.api.resources import REGISTRY, ResourceType
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer, key_of
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 4


class OwnerState(enum.Enum):
    SOLID = "solid"
    WAITING = "waiting"
    DANGLING = "dangling"


def collected_types() -> list[ResourceType[JsonObject]]:
    """Every served type that can own or be owned: those that can be listed, watched and
    deleted (as Kubernetes' collector picks them from discovery)."""
    return [rt for rt in REGISTRY if rt.kind not in UNCOLLECTED_KINDS
            and {"delete", "list", "watch"} <= set(rt.verbs)]


def owner_type(ref: OwnerReference) -> ResourceType | None:
    """The served type an owner reference names; any version of its group will do."""
    kind, api_version = ref.get("kind"), str(ref.get("apiVersion") or "")
    if not kind or kind in UNCOLLECTED_KINDS:
        return None
    exact = REGISTRY.by_kind(api_version, kind)
    if exact is not None:
        return exact
    group = api_version.rpartition("/")[0]
    return next((rt for rt in REGISTRY if rt.kind == kind and rt.group == group), None)


def owner_uids(obj: AnyObject) -> set[str]:
    return {ref["uid"] for ref in owner_references_of(obj) if ref.get("uid")}


def waits_for_dependents(obj: AnyObject) -> bool:
    return is_being_deleted(obj) and FOREGROUND in finalizers_of(obj)


def needs_sync(obj: AnyObject) -> bool:
    """Whether the collector has anything to decide about this object."""
    if is_being_deleted(obj):
        return bool(GC_FINALIZERS & set(finalizers_of(obj)))
    return bool(owner_references_of(obj))


def blocks(dependent: AnyObject, owner_uid: str) -> bool:
    return any(ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion")
               for ref in owner_references_of(dependent))


def gc_key(rt: ResourceType, obj: AnyObject) -> str:
    return f"{rt.qualified_name}/{key_of(obj)}"


def _ignore_gone(e: ApiError) -> None:
    """404 (already gone) and 409 (a uid precondition: replaced) need no retry."""
    if e.code not in (404, 409):
        raise e


class OwnershipGraph:
    """uid → (type, cached object), and owner uid → uids of its dependents."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[ResourceType, AnyObject]] = {}
        self.dependents: dict[str, set[str]] = {}

    def track(self, rt: ResourceType, obj: AnyObject) -> None:
        uid = uid_of(obj)
        if not uid:
            return
        self._unlink(uid)
        self.objects[uid] = (rt, obj)
        for owner in owner_uids(obj):
            self.dependents.setdefault(owner, set()).add(uid)

    def forget(self, obj: AnyObject) -> None:
        uid = uid_of(obj)
        if uid:
            self._unlink(uid)
            self.objects.pop(uid, None)

    def _unlink(self, uid: str) -> None:
        previous = self.objects.get(uid)
        if previous is None:
            return
        for owner in owner_uids(previous[1]):
            uids = self.dependents.get(owner)
            if uids is not None:
                uids.discard(uid)
                if not uids:
                    del self.dependents[owner]

    def get(self, uid: str) -> tuple[ResourceType, AnyObject] | None:
        return self.objects.get(uid)

    def dependents_of(self, uid: str) -> list[tuple[ResourceType, AnyObject]]:
        return [self.objects[d] for d in sorted(self.dependents.get(uid, ())) if d in self.objects]


class GarbageCollector:
    """Deletes dependents whose owners are gone, and finishes foreground and orphan deletes."""

    name = "garbagecollector"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.workers = workers
        self.graph = OwnershipGraph()
        self.types = {rt.qualified_name: rt for rt in collected_types()}
        self.informers: dict[str, Informer[JsonObject]] = {}
        self.queue = WorkQueue(self.name, metrics=self.ctx.metrics, clock=ctx.clock)
        for qualified, rt in self.types.items():
            informer = ctx.informers.get(rt)
            self.informers[qualified] = informer
            informer.add_handler(partial(self._added, rt), partial(self._updated, rt),
                                 partial(self._deleted, rt))


    async def run(self) -> None:
        """Wait for every cache, revisit every object, then collect until cancelled."""
        await self.ctx.informers.wait_synced(*self.types.values())
        self._enqueue_all()
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.ctx.metrics)

    def _enqueue_all(self) -> None:
        for rt, obj in list(self.graph.objects.values()):
            if needs_sync(obj):
                self.queue.add(gc_key(rt, obj))

    # ------------------------------------------------------------ handlers

    def _added(self, rt: ResourceType, obj: AnyObject) -> None:
        self.graph.track(rt, obj)
        if needs_sync(obj):
            self.queue.add(gc_key(rt, obj))

    def _updated(self, rt: ResourceType, old: AnyObject, new: AnyObject) -> None:
        if uid_of(old) != uid_of(new):
            self.graph.forget(old)
        self.graph.track(rt, new)
        if needs_sync(new) and (old is new or _ownership_view(old) != _ownership_view(new)):
            self.queue.add(gc_key(rt, new))
        if old is not new and owner_references_of(old) != owner_references_of(new):
            self._enqueue_waiting_owners(old)

    def _deleted(self, rt: ResourceType, obj: AnyObject) -> None:
        self.graph.forget(obj)
        uid = uid_of(obj)
        if uid:
            for dep_rt, dependent in self.graph.dependents_of(uid):
                self.queue.add(gc_key(dep_rt, dependent))
        self._enqueue_waiting_owners(obj)

    def _enqueue_waiting_owners(self, dependent: AnyObject) -> None:
        for uid in owner_uids(dependent):
            entry = self.graph.get(uid)
            if entry is not None and is_being_deleted(entry[1]):
                self.queue.add(gc_key(*entry))

    # ---------------------------------------------------------------- sync

    def cached(self, key: str) -> tuple[ResourceType, AnyObject | None]:
        qualified, _, object_key = key.partition("/")
        rt = self.types[qualified]
        return rt, self.informers[qualified].indexer.get(object_key)

    async def sync(self, key: str) -> None:
        rt, obj = self.cached(key)
        if obj is None:
            return
        if is_being_deleted(obj):
            await self.finish_deletion(rt, obj)
        elif owner_references_of(obj):
            await self._check_owners(rt, obj)

    async def finish_deletion(self, rt: ResourceType, obj: AnyObject) -> None:
        if ORPHAN in finalizers_of(obj):
            await self._orphan_dependents(obj)
            await self._remove_finalizer(rt, obj, ORPHAN)
        elif FOREGROUND in finalizers_of(obj):
            await self._delete_dependents(rt, obj)

    async def _orphan_dependents(self, owner: AnyObject) -> None:
        uid = uid_of(owner)
        for dep_rt, dependent in await self._live_dependents(owner):
            await self._remove_refs(dep_rt, dependent, [uid])

    async def _delete_dependents(self, rt: ResourceType, owner: AnyObject) -> None:
        uid = uid_of(owner)
        blocking = 0
        for dep_rt, dependent in self.graph.dependents_of(uid):
            if not is_being_deleted(dependent):
                self.queue.add(gc_key(dep_rt, dependent))
            if blocks(dependent, uid):
                blocking += 1
        if blocking:
            return
        if any(blocks(dep, uid) for _, dep in await self._live_dependents(owner)):
            raise Requeue("dependents still block the owner's deletion")
        await self._remove_finalizer(rt, owner, FOREGROUND)

    async def _live_dependents(self, owner: AnyObject) -> list[tuple[ResourceType, AnyObject]]:
        """Dependents as the server has them: before an irreversible step, the caches may
        not have seen a new one yet."""
        uid, namespace = uid_of(owner), namespace_of(owner)
        found: list[tuple[ResourceType, AnyObject]] = []
        for rt in self.types.values():
            if namespace and not rt.namespaced:
                continue
            items = (await self.client.list(rt, namespace)).get("items") or []
            found += [(rt, item) for item in items if uid in owner_uids(item)]
        return found

    async def _check_owners(self, rt: ResourceType, obj: AnyObject) -> None:
        states: dict[OwnerState, list[str]] = {state: [] for state in OwnerState}
        for ref in owner_references_of(obj):
            state = await self.owner_state(obj, ref)
            states[state].append(str(ref.get("uid")))
        stale = states[OwnerState.DANGLING] + states[OwnerState.WAITING]
        if not stale:
            return
        if states[OwnerState.SOLID]:
            await self._remove_refs(rt, obj, stale)
            return
        policy = "Foreground" if states[OwnerState.WAITING] else "Background"
        await self._delete(rt, obj, policy)

    async def owner_state(self, dependent: AnyObject, ref: OwnerReference) -> OwnerState:
        uid, rt = ref.get("uid"), owner_type(ref)
        namespace = namespace_of(dependent)
        if not uid or rt is None or (rt.namespaced and not namespace):
            return OwnerState.SOLID
        entry = self.graph.get(uid)
        owner = entry[1] if entry is not None else await self._live_owner(rt, namespace, ref)
        if owner is None:
            return OwnerState.DANGLING
        return OwnerState.WAITING if waits_for_dependents(owner) else OwnerState.SOLID

    async def _live_owner(
        self, rt: ResourceType, namespace: str | None, ref: OwnerReference
    ) -> AnyObject | None:
        """The owner as the server has it now, or None when no object has its uid."""
        name = ref.get("name")
        if not name:
            return None
        try:
            owner = await self.client.get(rt, namespace if rt.namespaced else None, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        return owner if uid_of(owner) == ref["uid"] else None

    # -------------------------------------------------------------- writes

    async def _delete(self, rt: ResourceType, obj: AnyObject, policy: str) -> None:
        md = meta_of(obj)
        log.info("%s: deleting %s/%s (%s): its owners are gone", self.name, rt.qualified_name,
                 key_of(obj), policy)
        try:
            await self.client.delete(rt, md.get("namespace"), md["name"],
                                     propagation_policy=policy, uid=md.get("uid"))
        except ApiError as e:
            _ignore_gone(e)

    async def _remove_refs(self, rt: ResourceType, obj: AnyObject, uids: list[str]) -> None:
        """A strategic merge patch deleting the references by uid, as Kubernetes sends it."""
        md = meta_of(obj)
        refs = [{"$patch": "delete", "uid": uid} for uid in uids]
        try:
            await self.client.patch(rt, md.get("namespace"), md["name"],
                                    {"metadata": {"ownerReferences": refs}},
                                    patch_type="strategic")
        except ApiError as e:
            _ignore_gone(e)

    async def _remove_finalizer(self, rt: ResourceType, obj: AnyObject, name: str) -> None:
        """Drop one finalizer from the live object, keeping the others; 409 retries the sync."""
        md = meta_of(obj)
        namespace = md.get("namespace")
        try:
            live = await self.client.get(rt, namespace, md["name"])
        except ApiError as e:
            _ignore_gone(e)
            return
        held = finalizers_of(live)
        if uid_of(live) != md.get("uid", "") or name not in held:
            return
        rest = [f for f in held if f != name]
        patch: JsonObject = {"metadata": {"finalizers": rest or None,
                                          "resourceVersion": resource_version_of(live)}}
        try:
            await self.client.patch(rt, namespace, md["name"], patch)
        except ApiError as e:
            if e.code != 404:
                raise


def _ownership_view(obj: AnyObject) -> tuple[object, ...]:
    md = meta_of(obj)
    return (md.get("ownerReferences"), md.get("deletionTimestamp"), md.get("finalizers"))
