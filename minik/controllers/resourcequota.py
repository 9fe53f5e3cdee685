"""The ResourceQuota controller: each quota's `status.hard` and `status.used`, recounted.

Kubernetes' `resourcequota-controller` (`pkg/controller/resourcequota`).
Admission charges a quota as objects are created (`quota_admission`); this
controller is what makes the numbers true again: it copies `spec.hard` to
`status.hard` (admission enforces only what the status holds) and counts,
for every bounded resource, what the namespace's objects use now
(`minik.api.quota.usage`: terminal pods no longer count as `pods` or
compute), so that deleted objects and charges whose create failed are
given back.

Handlers only compute keys: a quota that is added or whose spec changes is
queued; a pod, Service or claim that changes or goes queues every quota of
its namespace (from the informers' caches, as Kubernetes' replenishment
controller). Other kinds (ConfigMaps, Secrets, `count/...`) are recounted
when their quota is next synced, and every quota is resynced every
`RESYNC_SECONDS`, as Kubernetes resyncs every five minutes.

`sync(namespace/name)` is level-triggered: pods, Services and claims are read
from the caches, other kinds listed; the status is written only when it
changed, with the resourceVersion read, so that a charge admission made
meanwhile is a 409 and the sync is retried by the work queue.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, cast

from minik.api import quota
from minik.api.errors import ApiError
from minik.api.meta import name_of, namespace_of
from minik.api.objects import AnyObject, JsonObject
from minik.api.resources import (
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REGISTRY,
    RESOURCEQUOTAS,
    SERVICES,
    ResourceType,
)
from minik.controllers.context import ControllerContext
from minik.machinery.informer import Informer
from minik.machinery.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)

RESYNC_SECONDS = 60.0
DEFAULT_WORKERS = 1


class ResourceQuotaController:
    """Keeps every ResourceQuota's status equal to its spec's hard limits and real usage."""

    name = "resourcequota"

    def __init__(self, ctx: ControllerContext, *, workers: int = DEFAULT_WORKERS,
                 resync: float = RESYNC_SECONDS) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.metrics = ctx.metrics
        self.workers = workers
        self.resync = resync
        self.quotas: Informer[JsonObject] = ctx.informers.get(RESOURCEQUOTAS)
        self.cached: dict[str, Informer[Any]] = {
            "Pod": ctx.informers.get(PODS),
            "Service": ctx.informers.get(SERVICES),
            "PersistentVolumeClaim": ctx.informers.get(PERSISTENTVOLUMECLAIMS),
        }
        """The kinds whose changes give quota back, read from the caches (typed Pod, Service
        and PersistentVolumeClaim; quota usage reads them as plain objects)."""
        self.queue = WorkQueue(self.name, metrics=ctx.metrics, clock=ctx.clock)
        self.quotas.add_handler(self._quota_changed, self._quota_updated)
        for informer in self.cached.values():
            informer.add_handler(self._object_changed, lambda _old, new: self._object_changed(new),
                                 self._object_changed)

    async def run(self) -> None:
        await self.informers.wait_synced(RESOURCEQUOTAS, PODS, SERVICES, PERSISTENTVOLUMECLAIMS)
        for q in self.quotas.indexer.list():
            self._quota_changed(q)
        await run_workers(self.queue, self.sync, workers=self.workers, metrics=self.metrics)

    @staticmethod
    def _key(obj: AnyObject) -> str:
        return f"{namespace_of(obj)}/{name_of(obj)}"

    def _quota_changed(self, q: JsonObject) -> None:
        self.queue.add(self._key(q))

    def _quota_updated(self, old: JsonObject, new: JsonObject) -> None:
        if (old.get("spec") != new.get("spec")
                or (new.get("status") or {}).get("hard") != (new.get("spec") or {}).get("hard")):
            self._quota_changed(new)

    def _object_changed(self, obj: AnyObject) -> None:
        namespace = namespace_of(obj)
        for q in self.quotas.indexer.list(namespace):
            self.queue.add(self._key(q))

    async def sync(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        q = self.quotas.indexer.get_by(namespace, name)
        if q is None:
            return
        self.queue.add_after(key, self.resync)
        hard = dict((q.get("spec") or {}).get("hard") or {})
        used = await self._usage(q, namespace, list(hard))
        status = {"hard": hard, "used": {n: quota.render(n, used.get(n, Decimal(0)))
                                         for n in hard}}
        if q.get("status") == status:
            return
        try:
            await self.client.replace(RESOURCEQUOTAS, namespace, name, {**q, "status": status},
                                      subresource="status")
        except ApiError as e:
            if e.code == 404:
                return
            raise

    async def _usage(self, resource_quota: JsonObject, namespace: str,
                     names: list[str]) -> dict[str, Decimal]:
        """What the namespace's objects in the quota's scopes use now, of the resources it
        bounds."""
        total: dict[str, Decimal] = {}
        for rt in REGISTRY:
            if not rt.namespaced or "list" not in rt.verbs or rt.group == "metrics.k8s.io":
                continue
            if not any(quota.covers(rt.kind, rt.plural, rt.group, n) for n in names):
                continue
            for obj in await self._objects(rt, namespace):
                if quota.in_scope(resource_quota, rt.kind, obj):
                    quota.add(total, quota.usage(obj, rt.kind, rt.plural, rt.group))
        return total

    async def _objects(self, rt: ResourceType[JsonObject], namespace: str) -> list[JsonObject]:
        informer = self.cached.get(rt.kind)
        if informer is not None:
            return cast("list[JsonObject]", informer.indexer.list(namespace))
        listed = await self.client.list(rt, namespace)
        return list(listed.get("items") or [])
