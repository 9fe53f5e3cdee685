"""The namespace controller: a Terminating namespace is emptied, then finalized.

Deleting a namespace that still has content only marks it (deletionTimestamp,
`status.phase: Terminating`, `spec.finalizers: [kubernetes]`). This
controller then deletes every object of every namespaced type in it, with
propagationPolicy Background and the object's own grace period (the node
agent stops the containers of running pods). Objects held by finalizers or a
grace period stay; the namespace is checked again shortly after one of them
goes (a burst of deletions makes one pass) and after `recheck` seconds. The
content is listed live from the server, never judged from a cache.

Once nothing is left, `kubernetes` is removed from `spec.finalizers` with a
PUT to `/namespaces/{name}/finalize`, as in Kubernetes; with no finalizer
left the API server removes the namespace. Only this controller finalizes:
the API server never looks inside a namespace.

While content remains, the namespace's status carries the conditions of
Kubernetes: NamespaceDeletionContentFailure, NamespaceContentRemaining and
NamespaceFinalizersRemaining (with the discovery conditions always False).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from minik.api.errors import ApiError
from minik.api.meta import (
    finalizers_of,
    format_time,
    is_being_deleted,
    meta_of,
    name_of,
    namespace_of,
    resource_version_of,
    transition_time,
)
from minik.api.objects import AnyObject, Condition, JsonObject, Namespace
from minik.api.resources import NAMESPACES, REGISTRY, ResourceType
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer
from minik.machinery.requeue import Requeue
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

NAMESPACE_FINALIZER = "kubernetes"
DEFAULT_RECHECK = 5.0
CONTENT_SETTLE = 0.1
DEFAULT_WORKERS = 2


class ContentRemaining(Exception):
    """Some objects could not be deleted; the sync is retried with backoff."""


@dataclass(slots=True)
class Content:
    """What one pass over a Terminating namespace left behind."""

    remaining: Counter[str] = field(default_factory=Counter)
    finalizers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def count(self, rt: ResourceType, items: list[AnyObject]) -> None:
        if items:
            self.remaining[f"{rt.plural}.{rt.group}"] += len(items)
        for item in items:
            self.finalizers.update(finalizers_of(item))

    @property
    def empty(self) -> bool:
        return not self.remaining and not self.failures


def _summary(counts: Counter[str], joiner: str) -> str:
    return ", ".join(f"{name}{joiner}{n} resource instances" for name, n in sorted(counts.items()))


def deletion_conditions(content: Content) -> list[Condition]:
    """The namespace conditions Kubernetes reports while deleting content (no times)."""
    def condition(type_: str, true: bool, reason: str, message: str) -> Condition:
        return {"type": type_, "status": "True" if true else "False", "reason": reason,
                "message": message}

    failed = (f"Failed to delete all resource types, {len(content.failures)} remaining: "
              + ", ".join(content.failures))
    return [
        condition("NamespaceDeletionDiscoveryFailure", False, "ResourcesDiscovered",
                  "All resources successfully discovered"),
        condition("NamespaceDeletionGroupVersionParsingFailure", False, "ParsedGroupVersions",
                  "All legacy kube types successfully parsed"),
        condition("NamespaceDeletionContentFailure", bool(content.failures),
                  "ContentDeletionFailed" if content.failures else "ContentDeleted",
                  failed if content.failures
                  else "All content successfully deleted, may be waiting on finalization"),
        condition("NamespaceContentRemaining", bool(content.remaining),
                  "SomeResourcesRemain" if content.remaining else "ContentRemoved",
                  "Some resources are remaining: " + _summary(content.remaining, " has ")
                  if content.remaining else "All content successfully removed"),
        condition("NamespaceFinalizersRemaining", bool(content.finalizers),
                  "SomeFinalizersRemain" if content.finalizers else "ContentHasNoFinalizers",
                  "Some content in the namespace has finalizers remaining: "
                  + _summary(content.finalizers, " in ")
                  if content.finalizers else "All content-preserving finalizers finished"),
    ]


def with_transition_times(
    wanted: list[Condition], current: list[Condition], stamp: str
) -> list[Condition]:
    """`wanted`, keeping a condition's lastTransitionTime while its status is unchanged."""
    before = {c.get("type"): c for c in current}
    merged: list[Condition] = []
    for cond in wanted:
        at = transition_time(before.get(cond["type"]), cond["status"], stamp)
        merged.append({**cond, "lastTransitionTime": at})
    return merged


def _without_times(conditions: list[Condition]) -> list[JsonObject]:
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions]


class NamespaceController:
    """Deletes the content of Terminating namespaces, then lets them go."""

    name = "namespace"

    def __init__(self, ctx: ControllerContext, *, recheck: float = DEFAULT_RECHECK,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recheck = recheck
        self.workers = workers
        self.content_types = [rt for rt in REGISTRY if rt.namespaced and "delete" in rt.verbs]
        self.namespaces: Informer[Namespace] = ctx.informers.get(NAMESPACES)
        self.queue = WorkQueue(self.name, metrics=self.ctx.metrics, clock=ctx.clock)
        self.namespaces.add_handler(self._namespace_changed,
                                    lambda _old, new: self._namespace_changed(new))
        for rt in self.content_types:
            if rt.kind != "Event":
                ctx.informers.get(rt).add_handler(on_delete=self._content_deleted)


    async def run(self) -> None:
        await self.namespaces.wait_synced()
        for ns in self.namespaces.indexer.list():
            self._namespace_changed(ns)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.ctx.metrics)

    def _namespace_changed(self, ns: Namespace) -> None:
        if is_being_deleted(ns):
            self.queue.add(name_of(ns))

    def _content_deleted(self, obj: AnyObject) -> None:
        namespace = namespace_of(obj)
        if namespace is None:
            return
        ns = self.namespaces.indexer.get(namespace)
        if ns is not None and is_being_deleted(ns):
            self.queue.add_after(namespace, CONTENT_SETTLE)

    async def sync(self, name: str) -> None:
        ns = self.namespaces.indexer.get(name)
        if ns is None or not is_being_deleted(ns):
            return
        content = await self.delete_content(name)
        if content.empty:
            await self._finalize(name)
            return
        await self._write_conditions(name, content)
        if content.failures:
            raise ContentRemaining("; ".join(content.failures))
        raise Requeue("content remains", after=self.recheck)

    async def delete_content(self, namespace: str) -> Content:
        """Delete what is not yet being deleted; count what is still there."""
        content = Content()
        for rt in self.content_types:
            try:
                await self._delete_all(rt, namespace, content)
            except ApiError as e:
                content.failures.append(f"{rt.plural}.{rt.group}: {e}")
        return content

    async def _delete_all(self, rt: ResourceType, namespace: str, content: Content) -> None:
        items = (await self.client.list(rt, namespace)).get("items") or []
        live = [item for item in items if not is_being_deleted(item)]
        for item in live:
            await self._delete(rt, namespace, item)
        if live:
            items = (await self.client.list(rt, namespace)).get("items") or []
        content.count(rt, items)

    async def _delete(self, rt: ResourceType, namespace: str, obj: AnyObject) -> None:
        md = meta_of(obj)
        try:
            await self.client.delete(rt, namespace, md["name"], propagation_policy="Background",
                                     uid=md.get("uid"))
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _write_conditions(self, name: str, content: Content) -> None:
        """Patch status.conditions when they changed, against the live namespace."""
        wanted = deletion_conditions(content)
        cached = (self.namespaces.indexer.get(name) or {}).get("status") or {}
        if _without_times(cached.get("conditions") or []) == wanted:
            return
        live = await self._live(name)
        if live is None:
            return
        current = (live.get("status") or {}).get("conditions") or []
        if _without_times(current) == wanted:
            return
        conditions = with_transition_times(wanted, current, format_time(self.ctx.clock.wall()))
        patch = {"metadata": {"resourceVersion": resource_version_of(live)},
                 "status": {"conditions": conditions}}
        await self._patch_namespace(name, patch, subresource="status")

    async def _finalize(self, name: str) -> None:
        """Remove `kubernetes` from spec.finalizers; the server then removes the namespace."""
        live = await self._live(name)
        if live is None:
            return
        held = (live.get("spec") or {}).get("finalizers") or []
        if NAMESPACE_FINALIZER not in held:
            return
        finalized: Namespace = {
            **live, "spec": {**live.get("spec", {}),
                             "finalizers": [f for f in held if f != NAMESPACE_FINALIZER]}}
        log.info("%s: namespace %s is empty; finalizing it", self.name, name)
        try:
            await self.client.replace(NAMESPACES, None, name, finalized, subresource="finalize")
        except ApiError as e:
            if e.code != 404:
                raise

    async def _live(self, name: str) -> Namespace | None:
        """The namespace as the server holds it now; None once it is gone."""
        try:
            return await self.client.get(NAMESPACES, None, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def _patch_namespace(self, name: str, patch: JsonObject, *,
                               subresource: str | None = None) -> None:
        try:
            await self.client.patch(NAMESPACES, None, name, patch, subresource=subresource)
        except ApiError as e:
            if e.code != 404:
                raise
