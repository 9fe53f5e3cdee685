"""The ephemeral volume controller makes a pod-owned claim for each generic ephemeral volume."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from minik.api.resources import REGISTRY
from minik.api.volumes import SELECTED_NODE
from minik.controllers.ephemeral import EphemeralVolumeController, claim_for
from minik.machinery.clock import ManualClock
from tests.unit.apitest import eventually, poll, start_api
from tests.unit.test_garbagecollector import Cluster
from tests.unit.test_scheduler import add_node, bound_to, pod_scheduled, start_scheduler
from tests.unit.test_scheduler_volumes import storage_class

PODS = REGISTRY.resolve("pods")
PVCS = REGISTRY.resolve("persistentvolumeclaims")
PVS = REGISTRY.resolve("persistentvolumes")
CLASSES = REGISTRY.resolve("storageclasses")
assert PODS is not None and PVCS is not None and PVS is not None and CLASSES is not None


def template(storage_class: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"metadata": {"labels": {"type": "scratch"}, "annotations": {"note": "tmp"}},
            "spec": spec}


def pod_with_scratch(name: str = "web", *, storage_class: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}],
                     "volumes": [{"name": "scratch", "ephemeral": {
                         "volumeClaimTemplate": template(storage_class)}}]}}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    env = Cluster(await start_api())
    yield env
    await env.close()


def test_the_claim_is_named_for_pod_and_volume_owned_by_the_pod_and_made_from_the_template():
    pod = pod_with_scratch()
    pod["metadata"]["uid"] = "u1"
    claim = claim_for(pod, pod["spec"]["volumes"][0])
    assert claim["metadata"]["name"] == "web-scratch"
    assert claim["metadata"]["namespace"] == "default"
    assert claim["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "u1", "controller": True,
         "blockOwnerDeletion": True}]
    assert claim["metadata"]["labels"] == {"type": "scratch"}
    assert claim["metadata"]["annotations"] == {"note": "tmp"}
    assert claim["spec"] == template()["spec"]


async def claim_of(cluster: Cluster, name: str = "web-scratch") -> dict:
    return await poll(lambda: cluster.client.get(PVCS, "default", name), lambda _c: True)


async def test_a_pod_s_ephemeral_volume_gets_its_claim_and_a_deleted_claim_comes_back(
    cluster: Cluster,
):
    cluster.start(EphemeralVolumeController)
    pod = await cluster.client.create(PODS, "default", pod_with_scratch())
    claim = await claim_of(cluster)
    assert claim["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    await cluster.client.delete(PVCS, "default", "web-scratch")
    # pvc-protection keeps a claim its pod uses; an admin who insists clears the finalizer.
    await cluster.client.patch(PVCS, "default", "web-scratch",
                               {"metadata": {"finalizers": None}})
    again = await poll(lambda: cluster.client.get(PVCS, "default", "web-scratch"),
                       lambda c: c["metadata"]["uid"] != claim["metadata"]["uid"])
    assert again["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]


async def test_a_pod_without_ephemeral_volumes_gets_no_claim(cluster: Cluster):
    [controller] = cluster.start(EphemeralVolumeController)
    plain = pod_with_scratch("plain")
    plain["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    await cluster.client.create(PODS, "default", plain)
    await cluster.client.create(PODS, "default", pod_with_scratch("other"))
    await claim_of(cluster, "other-scratch")
    await eventually(lambda: len(controller.queue) == 0)
    names = [c["metadata"]["name"] for c in (await cluster.client.list(PVCS, "default"))["items"]]
    assert names == ["other-scratch"]


async def test_the_scheduler_waits_for_the_ephemeral_claim_and_selects_the_node_for_it(
    cluster: Cluster,
):
    await add_node(cluster.api, "n1")
    await cluster.client.create(CLASSES, None, storage_class("standard"))
    await start_scheduler(cluster.api, clock=ManualClock())
    await cluster.client.create(PODS, "default", pod_with_scratch(storage_class="standard"))
    waiting = await poll(lambda: cluster.client.get(PODS, "default", "web"),
                         lambda p: pod_scheduled(p).get("status") == "False")
    assert pod_scheduled(waiting)["message"] == (
        "0/1 nodes are available: waiting for ephemeral volume controller to create the "
        'persistentvolumeclaim "web-scratch".')
    cluster.start(EphemeralVolumeController)
    claim = await poll(lambda: cluster.client.get(PVCS, "default", "web-scratch"),
                       lambda c: SELECTED_NODE in c["metadata"].get("annotations", {}))
    assert claim["metadata"]["annotations"][SELECTED_NODE] == "n1"
    pod = await cluster.client.get(PODS, "default", "web")
    assert not pod["spec"].get("nodeName")
    await cluster.client.patch(PVCS, "default", "web-scratch", {"spec": {"volumeName": "pv1"}})
    current = await cluster.client.get(PVCS, "default", "web-scratch")
    await cluster.client.replace(PVCS, "default", "web-scratch",
                                 {**current, "status": {"phase": "Bound"}}, subresource="status")
    await cluster.client.create(PVS, None, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/pv1"}}})
    assert await bound_to(cluster.api, "web") == "n1"
