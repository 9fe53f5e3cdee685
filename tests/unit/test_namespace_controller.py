"""Namespace controller: a Terminating namespace is emptied, then goes, on a real API server."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from minik.api.errors import ApiError
from minik.api.resources import REGISTRY
from minik.controllers.garbagecollector import GarbageCollector
from minik.controllers.namespace import Content, NamespaceController, deletion_conditions
from tests.unit.apitest import poll, start_api
from tests.unit.test_garbagecollector import (
    CONFIGMAPS,
    HOLD,
    PODS,
    REPLICASETS,
    Cluster,
    configmap,
    exists,
    gone,
    pod,
    replicaset,
)

NAMESPACES = REGISTRY.resolve("namespaces")
assert NAMESPACES is not None


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    await env.client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "team"}})
    yield env
    await env.close()


async def get_ns(cluster: Cluster, name: str = "team") -> dict:
    return await cluster.client.get(NAMESPACES, None, name)


def conditions_of(ns: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}


def test_conditions_name_what_remains_as_kubernetes_words_it():
    content = Content(remaining=Counter({"configmaps.": 2, "replicasets.apps": 1}),
                      finalizers=Counter({HOLD: 1}))
    conditions = {c["type"]: c for c in deletion_conditions(content)}
    assert conditions["NamespaceContentRemaining"] == {
        "type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: configmaps. has 2 resource instances, "
                   "replicasets.apps has 1 resource instances"}
    assert conditions["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource "
        "instances")
    assert conditions["NamespaceDeletionContentFailure"]["status"] == "False"


def test_conditions_report_a_failed_deletion():
    content = Content(failures=["pods.: boom"])
    conditions = {c["type"]: c for c in deletion_conditions(content)}
    failure = conditions["NamespaceDeletionContentFailure"]
    assert (failure["status"], failure["reason"]) == ("True", "ContentDeletionFailed")
    assert failure["message"] == "Failed to delete all resource types, 1 remaining: pods.: boom"
    assert conditions["NamespaceContentRemaining"]["status"] == "False"


async def test_deleting_a_namespace_removes_everything_in_it_and_then_the_namespace(
    cluster: Cluster,
):
    cluster.start(GarbageCollector, NamespaceController)
    rs = await replicaset(cluster, "web", namespace="team")
    for name in ("web-a", "web-b"):
        await pod(cluster, name, rs)
    await pod(cluster, "solo", namespace="team")
    for name in ("a", "b"):
        await configmap(cluster, name, namespace="team")
    await configmap(cluster, "outside")
    marked = await cluster.client.delete(NAMESPACES, None, "team")
    assert marked["status"]["phase"] == "Terminating"
    await gone(cluster, NAMESPACES, "team")
    for rt in (CONFIGMAPS, REPLICASETS, PODS):
        assert (await cluster.client.list(rt, "team"))["items"] == []
    assert await exists(cluster, CONFIGMAPS, "outside")


async def test_a_finalizer_in_the_namespace_keeps_it_terminating_until_it_is_removed(
    cluster: Cluster,
):
    cluster.start(NamespaceController)
    await configmap(cluster, "held", namespace="team", finalizers=[HOLD])
    await configmap(cluster, "free", namespace="team")
    await cluster.client.delete(NAMESPACES, None, "team")
    terminating = await poll(
        lambda: get_ns(cluster),
        lambda ns: "NamespaceFinalizersRemaining" in conditions_of(ns))
    conditions = conditions_of(terminating)
    assert terminating["status"]["phase"] == "Terminating"
    assert terminating["spec"]["finalizers"] == ["kubernetes"]
    assert conditions["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances")
    assert conditions["NamespaceFinalizersRemaining"]["status"] == "True"
    assert not await exists(cluster, CONFIGMAPS, "free", "team")
    with pytest.raises(ApiError) as refused:
        await configmap(cluster, "late", namespace="team")
    assert refused.value.code == 403
    await cluster.client.patch(CONFIGMAPS, "team", "held", {"metadata": {"finalizers": None}})
    await gone(cluster, NAMESPACES, "team")


async def test_a_namespace_left_terminating_while_the_controller_was_down_is_finished(
    cluster: Cluster,
):
    await configmap(cluster, "held", namespace="team", finalizers=[HOLD])
    await cluster.client.delete(NAMESPACES, None, "team")
    await cluster.client.patch(CONFIGMAPS, "team", "held", {"metadata": {"finalizers": None}})
    assert (await get_ns(cluster))["status"]["phase"] == "Terminating"
    cluster.start(NamespaceController)
    await gone(cluster, NAMESPACES, "team")


async def test_namespaces_that_are_not_terminating_are_left_alone(cluster: Cluster):
    [controller] = cluster.start(NamespaceController)
    await controller.namespaces.wait_synced(5)
    await configmap(cluster, "keep", namespace="team")
    await controller.sync("team")
    assert await exists(cluster, CONFIGMAPS, "keep", "team")
    assert (await get_ns(cluster))["status"]["phase"] == "Active"
