"""Garbage collector: owners and dependents against a real in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from minik.api.errors import ApiError
from minik.api.propagation import FOREGROUND, ORPHAN
from minik.api.resources import REGISTRY, ResourceType
from minik.controllers.context import Controller, ControllerContext
from minik.controllers.garbagecollector import (
    GarbageCollector,
    OwnerState,
    needs_sync,
    owner_type,
)
from minik.home import Home
from minik.machinery.events import EventRecorder
from minik.machinery.metrics import ControllerMetrics
from minik.machinery.requeue import Requeue
from minik.machinery.shared_informers import SharedInformers
from minik.machinery.supervisor import Supervisor
from minik.server.config import ServerConfig
from tests.unit.apitest import Api, poll, start_api

CONFIGMAPS = REGISTRY.resolve("configmaps")
PODS = REGISTRY.resolve("pods")
REPLICASETS = REGISTRY.resolve("replicasets")
assert CONFIGMAPS is not None and PODS is not None and REPLICASETS is not None
HOLD = "example.com/hold"


@dataclass
class Cluster:
    """An API server, and controllers on shared informers as the manager runs them."""

    api: Api
    supervisor: Supervisor = field(default_factory=Supervisor)

    @property
    def client(self):
        return self.api.client

    def start(self, *factories: Callable[[ControllerContext], Controller]) -> list[Any]:
        ctx = ControllerContext(
            client=self.client, informers=SharedInformers(self.client),
            events=EventRecorder(self.client, "controller-manager"),
            metrics=ControllerMetrics(CollectorRegistry()),
        )
        controllers = [build(ctx) for build in factories]
        ctx.informers.start(self.supervisor)
        for controller in controllers:
            self.supervisor.start(controller.name, controller.run)
        return controllers

    async def close(self) -> None:
        await self.supervisor.stop()
        await self.api.close()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    yield env
    await env.close()


def ref(owner: dict, *, block: bool = False, controller: bool = False) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"],
            "uid": md["uid"], "blockOwnerDeletion": block, "controller": controller}


async def configmap(cluster: Cluster, name: str, *owners: dict, namespace: str = "default",
                    finalizers: list[str] | None = None) -> dict:
    md: dict = {"name": name}
    if owners:
        md["ownerReferences"] = list(owners)
    if finalizers:
        md["finalizers"] = finalizers
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
    return await cluster.client.create(CONFIGMAPS, namespace, body)


async def replicaset(cluster: Cluster, name: str, *, namespace: str = "default") -> dict:
    labels = {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app",
                                                           "image": "busybox:1.36"}]}}}}
    return await cluster.client.create(REPLICASETS, namespace, body)


async def pod(cluster: Cluster, name: str, owner: dict | None = None, *,
              namespace: str = "default") -> dict:
    """An unscheduled pod, owned (blocking, as a controller) by `owner` if given."""
    md: dict = {"name": name}
    if owner is not None:
        md["labels"] = {"app": owner["metadata"]["name"]}
        md["ownerReferences"] = [ref(owner, block=True, controller=True)]
        namespace = owner["metadata"]["namespace"]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
    return await cluster.client.create(PODS, namespace, body)


async def exists(cluster: Cluster, rt: ResourceType, name: str, namespace: str = "default") -> bool:
    try:
        await cluster.client.get(rt, namespace, name)
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    return True


async def gone(cluster: Cluster, rt: ResourceType, *names: str, timeout: float = 5.0) -> None:
    async def missing() -> list[bool]:
        return [not await exists(cluster, rt, name) for name in names]

    await poll(missing, all, timeout)


async def get_cm(cluster: Cluster, name: str) -> dict:
    return await cluster.client.get(CONFIGMAPS, "default", name)


# ----------------------------------------------------------------------- pure


def test_owner_references_resolve_to_served_types_and_ignore_unknown_kinds():
    assert owner_type({"apiVersion": "apps/v1", "kind": "ReplicaSet"}) is REPLICASETS
    assert owner_type({"apiVersion": "apps/v1beta2", "kind": "ReplicaSet"}) is REPLICASETS
    assert owner_type({"apiVersion": "example.com/v1", "kind": "Widget"}) is None
    assert owner_type({"apiVersion": "v1", "kind": "Event"}) is None


def test_only_owned_objects_and_owners_in_gc_deletion_need_a_sync():
    assert not needs_sync({"metadata": {"name": "a"}})
    assert needs_sync({"metadata": {"ownerReferences": [{"uid": "u"}]}})
    marked = {"deletionTimestamp": "2024-01-01T00:00:00Z"}
    assert needs_sync({"metadata": {**marked, "finalizers": [FOREGROUND]}})
    assert needs_sync({"metadata": {**marked, "finalizers": [ORPHAN, HOLD]}})
    assert not needs_sync({"metadata": {**marked, "finalizers": [HOLD]}})


# ------------------------------------------------------------- with a server


async def test_background_deletion_of_an_owner_collects_its_dependents(cluster: Cluster):
    cluster.start(GarbageCollector)
    owner = await configmap(cluster, "owner")
    for name in ("dep-1", "dep-2"):
        await configmap(cluster, name, ref(owner))
    await configmap(cluster, "bystander")
    await cluster.client.delete(CONFIGMAPS, "default", "owner", propagation_policy="Background")
    await gone(cluster, CONFIGMAPS, "dep-1", "dep-2")
    assert await exists(cluster, CONFIGMAPS, "bystander")


async def test_a_dependent_with_a_surviving_owner_loses_only_the_dangling_reference(
    cluster: Cluster,
):
    cluster.start(GarbageCollector)
    first, second = await configmap(cluster, "first"), await configmap(cluster, "second")
    await configmap(cluster, "shared", ref(first), ref(second))
    await cluster.client.delete(CONFIGMAPS, "default", "first")
    shared = await poll(lambda: get_cm(cluster, "shared"),
                        lambda cm: len(cm["metadata"].get("ownerReferences") or []) == 1)
    assert [r["uid"] for r in shared["metadata"]["ownerReferences"]] == [
        second["metadata"]["uid"]]


async def test_a_reference_naming_a_recreated_owner_is_dangling_by_uid(cluster: Cluster):
    owner = await configmap(cluster, "owner")
    await configmap(cluster, "dep", ref(owner))
    await cluster.client.delete(CONFIGMAPS, "default", "owner")
    await configmap(cluster, "owner")
    cluster.start(GarbageCollector)
    await gone(cluster, CONFIGMAPS, "dep")
    assert await exists(cluster, CONFIGMAPS, "owner")


async def test_dependents_orphaned_while_the_collector_was_down_are_collected_when_it_starts(
    cluster: Cluster,
):
    rs = await replicaset(cluster, "web")
    for name in ("web-a", "web-b"):
        await pod(cluster, name, rs)
    await cluster.client.delete(REPLICASETS, "default", "web", propagation_policy="Background")
    assert await exists(cluster, PODS, "web-a")
    cluster.start(GarbageCollector)
    await gone(cluster, PODS, "web-a", "web-b")


async def test_references_to_kinds_minik_does_not_serve_keep_the_dependent(cluster: Cluster):
    [gc] = cluster.start(GarbageCollector)
    alien = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "not-here"}
    owner = await configmap(cluster, "owner")
    await configmap(cluster, "dep", alien, ref(owner))
    await cluster.client.delete(CONFIGMAPS, "default", "owner")
    dep = await poll(lambda: get_cm(cluster, "dep"),
                     lambda cm: len(cm["metadata"]["ownerReferences"]) == 1)
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "Widget"
    assert await gc.owner_state(dep, alien) is OwnerState.SOLID


def unstarted_collector(cluster: Cluster) -> GarbageCollector:
    """A collector whose caches never fill: everything it knows, it must ask the server."""
    return GarbageCollector(ControllerContext(
        client=cluster.client, informers=SharedInformers(cluster.client),
        events=EventRecorder(cluster.client, "test"),
        metrics=ControllerMetrics(CollectorRegistry())))


async def test_an_owner_the_cache_has_not_seen_is_checked_live_before_anything_is_deleted(
    cluster: Cluster,
):
    gc = unstarted_collector(cluster)
    owner = await configmap(cluster, "owner")
    dep = await configmap(cluster, "dep", ref(owner))
    assert await gc.owner_state(dep, ref(owner)) is OwnerState.SOLID
    impostor = {**ref(owner), "uid": "0000-not-the-owner"}
    assert await gc.owner_state(dep, impostor) is OwnerState.DANGLING


async def test_foreground_deletion_removes_dependents_before_the_owner(cluster: Cluster):
    cluster.start(GarbageCollector)
    owner = await configmap(cluster, "owner")
    await configmap(cluster, "quick", ref(owner, block=True))
    await configmap(cluster, "held", ref(owner, block=True), finalizers=[HOLD])
    await cluster.client.delete(CONFIGMAPS, "default", "owner", propagation_policy="Foreground")
    await gone(cluster, CONFIGMAPS, "quick")
    await poll(lambda: get_cm(cluster, "held"),
               lambda cm: bool(cm["metadata"].get("deletionTimestamp")))
    waiting = await get_cm(cluster, "owner")
    assert waiting["metadata"]["deletionTimestamp"]
    assert waiting["metadata"]["finalizers"] == [FOREGROUND]
    await cluster.client.patch(CONFIGMAPS, "default", "held", {"metadata": {"finalizers": None}})
    await gone(cluster, CONFIGMAPS, "held", "owner")


async def test_a_foreground_owner_keeps_its_finalizer_while_the_server_has_blocking_dependents(
    cluster: Cluster,
):
    gc = unstarted_collector(cluster)
    owner = await configmap(cluster, "owner")
    await configmap(cluster, "dep", ref(owner, block=True))
    marked = await cluster.client.delete(CONFIGMAPS, "default", "owner",
                                         propagation_policy="Foreground")
    with pytest.raises(Requeue):
        await gc.finish_deletion(CONFIGMAPS, marked)
    assert (await get_cm(cluster, "owner"))["metadata"]["finalizers"] == [FOREGROUND]
    await cluster.client.delete(CONFIGMAPS, "default", "dep")
    await gc.finish_deletion(CONFIGMAPS, marked)
    assert not await exists(cluster, CONFIGMAPS, "owner")


async def test_foreground_deletion_of_a_replicaset_removes_its_pods_then_the_replicaset(
    cluster: Cluster,
):
    cluster.start(GarbageCollector)
    rs = await replicaset(cluster, "web")
    for name in ("web-a", "web-b"):
        await pod(cluster, name, rs)
    marked = await cluster.client.delete(REPLICASETS, "default", "web",
                                         propagation_policy="Foreground")
    assert FOREGROUND in marked["metadata"]["finalizers"]
    await gone(cluster, REPLICASETS, "web")
    assert not await exists(cluster, PODS, "web-a")
    assert not await exists(cluster, PODS, "web-b")


async def test_foreground_deletion_keeps_a_dependent_that_has_another_owner(cluster: Cluster):
    cluster.start(GarbageCollector)
    owner, other = await configmap(cluster, "owner"), await configmap(cluster, "other")
    await configmap(cluster, "shared", ref(owner, block=True), ref(other))
    await cluster.client.delete(CONFIGMAPS, "default", "owner", propagation_policy="Foreground")
    await gone(cluster, CONFIGMAPS, "owner")
    shared = await get_cm(cluster, "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other"]


async def test_the_orphan_finalizer_strips_references_and_keeps_the_dependents(
    cluster: Cluster,
):
    cluster.start(GarbageCollector)
    owner = await configmap(cluster, "owner", finalizers=[ORPHAN])
    await configmap(cluster, "dep", ref(owner, block=True))
    await cluster.client.delete(CONFIGMAPS, "default", "owner")
    await gone(cluster, CONFIGMAPS, "owner")
    dep = await get_cm(cluster, "dep")
    assert not dep["metadata"].get("ownerReferences")


async def test_a_user_finalizer_keeps_an_object_terminating_until_it_is_removed(
    cluster: Cluster,
):
    cluster.start(GarbageCollector)
    owner = await configmap(cluster, "owner", finalizers=[HOLD])
    await configmap(cluster, "dep", ref(owner))
    marked = await cluster.client.delete(CONFIGMAPS, "default", "owner")
    assert marked["metadata"]["deletionTimestamp"]
    assert (await get_cm(cluster, "owner"))["metadata"]["finalizers"] == [HOLD]
    assert await exists(cluster, CONFIGMAPS, "dep")
    await cluster.client.patch(CONFIGMAPS, "default", "owner", {"metadata": {"finalizers": []}})
    await gone(cluster, CONFIGMAPS, "owner", "dep")


def test_disabling_the_garbage_collector_turns_off_the_api_server_s_garbage_collection():
    def config(disabled: frozenset[str]) -> ServerConfig:
        return ServerConfig(Home.at("/tmp/h"), "m", 6443, disabled_controllers=disabled)

    assert config(frozenset()).garbage_collection
    assert not config(frozenset({GarbageCollector.name})).garbage_collection
